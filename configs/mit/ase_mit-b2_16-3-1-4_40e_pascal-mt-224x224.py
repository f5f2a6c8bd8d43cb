# ASE (16/3/1/4) around a frozen MiT-B2: 16 LoRA experts of rank 4 beside every MixFFN of the
# four stages (1 shared, top-3 of the 15 sparse ones), plain LoRA r=4 on the attention's packed
# qkv and output projection, task embeddings on the first stage's tokens, MI loss. ASE protocol
# base (224x224, 40 epochs, astmt, ResNet-18 STL Δm).
_base_ = ['./_base_/ase_mit-b2_pascal_mt_224.py']
model = dict(backbone=dict(adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                                        shared_gating='adaptive')))
