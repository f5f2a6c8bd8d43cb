# Single-task (STL) reference of Δm for the toy NYUD-v2 dataset: main metric per task (semseg
# mIoU %, depth RMSE m, normals mErr degrees, edge odsF % with tolerance 0.011 and SEISM's
# one-to-one matching), measured with
# configs/toy/stl-<task>_vit-tiny_lora-r4_300it_toy-nyud-mt-64x64.py
# (the multi-task toy config's tiny ViT, plain LoRA r=4 on qkv/proj, heads and schedule, without
# the experts; seed 0, 300 iterations, metrics_val_iter_300.json of `python tools/train.py CONFIG`
# on a CPU, 2026-12-01). Update after re-running them.
stl_reference = dict(semseg=16.78, depth=0.7519, normals=20.98, edge=19.18)
