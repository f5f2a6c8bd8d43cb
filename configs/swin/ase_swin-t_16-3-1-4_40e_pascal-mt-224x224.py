# ASE (16/3/1/4) around a frozen Swin-T: 16 LoRA experts of rank 4 beside every FFN of the four
# stages (1 shared, top-3 of the 15 sparse ones, one softmax per task router over the selected
# and the shared), plain LoRA r=4 on the window attention's qkv/proj, task embeddings on the
# patch tokens, MI loss. ASE protocol base (224x224, 40 epochs, astmt, ResNet-18 STL Δm).
_base_ = ['./_base_/ase_swin-t_pascal_mt_224.py']
model = dict(backbone=dict(adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                                        shared_gating='adaptive')))
