# NYUD-v2 multi-task (795 train / 654 val images of 425x560 px; either public archive: the
# MTI-Net/ATRC/MTLoRA one with .jpg images and .npy normals/edges, or the InvPT/TaskPrompter/
# MLoRE one with .png files; the variant of each file is detected). Labels: semseg 40
# classes (void 0 -> ignore 255), depth in metres (0 = invalid; NaN/inf values in a depth
# .npy are masked as invalid, i.e. set to 0, when loaded), normals (zero = invalid), edges.
# Training follows the InvPT line of work: random rescale 1.0-1.5, 448x576 crop, flip,
# photometric distortion (InvPT draws the scale from {1.0, 1.2, 1.5}; here it is uniform).
# Validation resizes the image to fit 448x576 (x1.029 for 425x560 images; InvPT pads
# without resizing) and loads the ground truth after the resize, so it keeps its original
# size, as mmseg does. No val_evaluator here: see the experiments.
#
# `tasks` below is the experiment's one statement of its tasks: a config that inherits this
# file and sets `tasks = ('semseg', 'normals')` changes the model, the datasets and the
# evaluator (mmase.engine.experiment_tasks, run by MultiTaskRunner and the mmase tools).
tasks = ('semseg', 'depth', 'normals', 'edge')
dataset_type = 'NYUDv2MTDataset'
data_root = 'data/NYUDv2'
crop_size = (448, 576)  # (h, w)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        scale=(560, 425),  # (w, h) of the archive's images
        ratio_range=(1.0, 1.5),
        keep_ratio=True),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=crop_size),
    dict(type='PackMultiTaskInputs')
]
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='MultiTaskResize', scale=(576, 448), keep_ratio=True),  # (w, h)
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
    dict(type='MultiTaskResize', scale=(576, 448), keep_ratio=True),
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
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gt_sets/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gt_sets/val.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
