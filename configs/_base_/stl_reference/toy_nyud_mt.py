# Single-task (STL) reference of Δm for the toy NYUD-v2 dataset: main metric per task (semseg
# mIoU %, depth RMSE m, normals mErr degrees, edge odsF % with tolerance 0.011), measured with
# configs/toy/stl-<task>_vit-tiny_lora-r4_300it_toy-nyud-mt-64x64.py (same tiny ViT, heads and
# schedule as the multi-task toy config; seed 0, 300 iterations, metrics_val_iter_300.json of
# `python tools/train.py CONFIG` on a CPU). Update after re-running them.
stl_reference = dict(semseg=27.15, depth=0.7458, normals=20.88, edge=21.60)
