# Table 1's 16/4/0/4 experts in the first-linear reading: the experts of
# lora-moe_vit-b16_16-4-0-4_40e_pascal-mt-224x224.py
# moved from beside the whole FFN (d -> d) onto each block's FFN first linear (fc1, d -> 4d; the
# router reads the FFN's input): FFN'(x) = fc2(act(W0 x + (alpha/r) sum_i g_i B_i A_i x)).
# One config key apart (adapter.placement); Table 1's parameter column (104 -> 107 -> 108 M) fits
# this reading, the text the FFN-side one (configs/ase_protocol/README.md, docs/method.md).
_base_ = ['./lora-moe_vit-b16_16-4-0-4_40e_pascal-mt-224x224.py']
model = dict(backbone=dict(adapter=dict(placement='linear', targets=('fc1', ))))
