# Single-task (STL) reference of Δm for NYUD-v2 with a ViT-S/16 backbone: the main metric of each
# task (semseg mIoU, depth RMSE in metres, normals mErr in degrees, edge odsF with the NYUD
# tolerance 0.011) measured with
#   configs/nyud/stl-<task>_vit-s16_lora-r16_40k_nyud-mt-448x576.py
# (the same backbone, heads and schedule as the multi-task configs, one plain LoRA of rank 16).
#
# No published numbers exist for this exact setting, so the values are not filled in and Δm is off:
# MultiTaskMetric takes stl_reference=None (no Δm) or a dict with a finite number for every task.
# To switch Δm on, train and test the four STL configs, then replace the line below by
#   stl_reference = dict(semseg=..., depth=..., normals=..., edge=...)
# with their `<task>/<metric>` values from metrics_test.json. Every config that inherits this file
# (configs/nyud/mtl-*, ase_*) then reports multitask/delta_m.
# Finished runs can be compared without re-testing: tools/analysis/delta_m.py.
stl_reference = None
