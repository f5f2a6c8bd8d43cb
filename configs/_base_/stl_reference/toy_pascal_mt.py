# Single-task (STL) reference of Δm for the toy PASCAL-Context dataset: the main metric of each
# task, measured by training configs/toy/stl-<task>_vit-tiny_lora-r4_300it_toy-pascal-mt-64x64.py
# (same tiny ViT, heads and schedule as the multi-task toy config; one LoRA of rank 16) with
# tools/train.py on 2026-11-25 (CPU, seed 0; final validation of the 300-iteration run).
# Re-run them and update these numbers whenever the toy data, model or schedule change.
stl_reference = dict(
    semseg=51.17,       # semseg/mIoU (%)
    human_parts=24.70,  # human_parts/mIoU (%), images with a person (filter_cfg.with_persons)
    sal=74.92,          # sal/maxF (%), protocol 'invpt'
    normals=23.97,      # normals/mErr (degrees, lower is better)
    edge=16.23,         # edge/odsF (%)
)
