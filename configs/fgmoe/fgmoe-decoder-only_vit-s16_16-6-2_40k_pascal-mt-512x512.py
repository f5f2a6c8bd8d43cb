# Ablation, second stage of the encoder-side FGMoE (not the paper's reading: see README.md; the
# paper's reading, FGMoE experts in a multi-task decoder on a frozen encoder, is
# fgmoe-decoder_vit-s16_16-6-2_40k_pascal-mt-512x512.py): the encoder, FGMoE experts included,
# is frozen (`frozen=True`); only the task heads train. Start it from a trained FGMoE checkpoint:
#   --cfg-options load_from=work_dirs/fgmoe_vit-s16_16-6-2_40k_pascal-mt-512x512/iter_40000.pth
_base_ = ['./fgmoe_vit-s16_16-6-2_40k_pascal-mt-512x512.py']
model = dict(backbone=dict(frozen=True, mlp_moe=dict(load_balance_weight=0.0)))
