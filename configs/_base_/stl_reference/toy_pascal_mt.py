# Single-task (STL) reference of Δm for the toy PASCAL-Context dataset: the main metric of each
# task, measured by training configs/toy/stl-<task>_vit-tiny_lora-r4_300it_toy-pascal-mt-64x64.py
# (the multi-task toy config's tiny ViT, plain LoRA r=4 on qkv/proj, heads and schedule, without
# the experts: the ASE paper's ablation reference, a single-task ViT with the multi-task model's
# backbone) with tools/train.py on 2026-12-01 (CPU, seed 0; final validation of the 300-iteration
# run; edge odsF with SEISM's one-to-one matching). Re-run them and update these numbers whenever
# the toy data, model or schedule change.
stl_reference = dict(
    semseg=33.26,       # semseg/mIoU (%)
    human_parts=19.47,  # human_parts/mIoU (%), images with a person (filter_cfg.with_persons)
    sal=73.09,          # sal/maxF (%), protocol 'invpt'
    normals=24.24,      # normals/mErr (degrees, lower is better)
    edge=14.40,         # edge/odsF (%)
)
