# Task addition, joint variant: as add-edge-frozen_*, but every parameter trains (all five
# tasks' losses): the old tasks may improve or be forgotten.
_base_ = ['./add-edge-frozen_ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
model = dict(task_addition=dict(frozen_tasks=()))
