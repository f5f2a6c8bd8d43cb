# Single-task (STL) reference of Δm for PASCAL-Context with a ViT-B/16 backbone: the main metric of
# each task (semseg mIoU, human_parts mIoU, sal maxF, normals mErr in degrees, edge odsF; the
# 'invpt' protocol of the multi-task configs) measured with
#   configs/baselines/stl-<task>_vit-b16_lora-r16_40k_pascal-mt-512x512.py
# (the same backbone, heads and schedule as the multi-task configs, one plain LoRA of rank 16).
#
# No published numbers exist for this exact setting, so the values are not filled in and Δm is off:
# MultiTaskMetric takes stl_reference=None (no Δm) or a dict with a finite number for every task.
# To switch Δm on, train and test the five STL configs, then replace the line below by
#   stl_reference = dict(semseg=..., human_parts=..., sal=..., normals=..., edge=...)
# with their `<task>/<metric>` values from metrics_test.json. Every config that inherits this file
# (configs/ase/ase_vit-b16_*) then reports multitask/delta_m.
# Finished runs can be compared without re-testing: tools/analysis/delta_m.py.
stl_reference = None
