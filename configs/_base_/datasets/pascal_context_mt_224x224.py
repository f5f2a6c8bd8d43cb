# PASCAL-Context multi-task (the public PASCAL_MT archive: 4998 train / 5105 val images) under the
# ASE protocol (Li et al., arXiv 2510.00570, Sec. 4 / Table 1): 224x224 inputs, 40 epochs
# (schedules/schedule_40e.py). The paper gives only the input size; the resizing below is that of
# the loaders of the 224-448 px family it belongs to (ASTMT, MTI-Net, MTLoRA: `FixedResize` to a
# square for training and testing, no aspect ratio kept), in mmase's transforms:
#
# - train: the image and every label map are resized to a random square of side 224 x r,
#   r ~ U(0.75, 1.25) (aspect ratio not kept; the ASTMT loaders' random scaling of 0.75-1.25 then
#   fixed resize), a random 224x224 window is cut where the square is larger, and a smaller one is
#   padded at the bottom/right to 224x224 (labels padded with their ignore value, never counted);
#   horizontal flip (normals' x negated). Omitted from those loaders, as mmase has no such
#   transform: the random rotation of +-20 degrees. No photometric distortion (they use none);
# - test: the image is resized to 224x224 (aspect ratio not kept), the ground truth is loaded
#   after the resize and keeps its original size; the model's outputs are resized back to the
#   original image and scored there, as the ASTMT / MTI-Net evaluations of saved predictions do
#   (and SEISM's edge tolerance, a fraction of the image diagonal, needs). MTLoRA's in-training
#   meter scores at the resized 224x224 ground truth instead; to do that, move
#   LoadMultiTaskAnnotations above MultiTaskResize in test_pipeline.
#
# The ViT input is 224x224 (14x14 patches of 16 px): set model.data_preprocessor.size=(224, 224)
# and model.backbone.img_size=224 in the model config; the ImageNet-pretrained ViT is a local timm
# state dict named after the timm model, e.g. model.backbone.pretrained=
# 'pretrain/vit_base_patch16_224.pth' (ViT-B/16) or 'pretrain/vit_small_patch16_224.pth' (ViT-S/16),
# saved as docs/get_started.md shows (nothing is downloaded). No val_evaluator here: see the experiments
# (protocol='astmt', stl_reference from ../stl_reference/pascal_mt_resnet18_ase.py).
#
# `tasks` below is the experiment's one statement of its tasks: a config that inherits this
# file and sets `tasks = ('semseg', 'normals')` changes the model, the datasets and the
# evaluator (mmase.engine.experiment_tasks, run by MultiTaskRunner and the mmase tools).
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
dataset_type = 'PascalContextMTDataset'
data_root = 'data/PASCAL_MT'
crop_size = (224, 224)  # (h, w)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        scale=(224, 224),
        ratio_range=(0.75, 1.25),
        keep_ratio=False),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='MultiTaskPad', size=crop_size),
    dict(type='IgnoreEmptyHumanParts'),
    dict(type='PackMultiTaskInputs')
]
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='MultiTaskResize', scale=(224, 224), keep_ratio=False),
    # annotations after the resize: the ground truth keeps the original size
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs')
]
# Test-time augmentation (tools/test.py --tta, model MultiTaskTTAModel): the test resize, then
# every view of scales x flips; annotations after the flip, so the ground truth stays unflipped
# at the original size. (Predicting needs no labels: mmase.apis drops LoadMultiTaskAnnotations.)
tta_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='MultiTaskResize', scale=(224, 224), keep_ratio=False),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='MultiTaskResize', scale_factor=r, keep_ratio=True) for r in tta_ratios],
            [dict(type='MultiTaskRandomFlip', prob=0.0, direction='horizontal'),
             dict(type='MultiTaskRandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadMultiTaskAnnotations')],
            [dict(type='PackMultiTaskInputs')],
        ])
]
# Batch 16 on one GPU (the paper trains on one GPU and gives no batch size: ours).
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    # epochs (EpochBasedTrainLoop): one pass over the train set, reshuffled every epoch
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Context/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Context/val.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
