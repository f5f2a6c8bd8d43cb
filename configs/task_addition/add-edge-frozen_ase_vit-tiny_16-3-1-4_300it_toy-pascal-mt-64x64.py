# Task addition, step 2: edge joins the four-task toy ASE model
# (ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-4tasks.py, trained first). Its head is new, its
# routers and task embedding start from the most similar old task (tools/add_task.py measures
# it from routing statistics and writes the resolved config), the old tasks are frozen: their
# heads, their router rows and the shared backbone keep the checkpoint's values, so their
# metrics cannot move. Same 300-iteration budget as training edge from scratch.
_base_ = ['../toy/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
model = dict(
    task_addition=dict(
        checkpoint='work_dirs/ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-4tasks/iter_300.pth',
        router_init=dict(edge='most_similar'),
        frozen_tasks='old'))
