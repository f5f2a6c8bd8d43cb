# PASCAL-Context multi-task (the public PASCAL_MT archive: 4998 train / 5105 val images).
# Training follows the InvPT line of work: random rescale 0.5-2.0, 512x512 crop, flip,
# photometric distortion; validation resizes the image (ground truth stays at its original
# size, loaded after the resize, as mmseg does). No val_evaluator here: see the experiments.
#
# `tasks` below is the experiment's one statement of its tasks: a config that inherits this
# file and sets `tasks = ('semseg', 'normals')` changes the model, the datasets and the
# evaluator (mmase.engine.experiment_tasks, run by MultiTaskRunner and the mmase tools).
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
dataset_type = 'PascalContextMTDataset'
data_root = 'data/PASCAL_MT'
crop_size = (512, 512)  # (h, w)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        scale=(512, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=crop_size),
    dict(type='IgnoreEmptyHumanParts'),
    dict(type='PackMultiTaskInputs')
]
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='MultiTaskResize', scale=(512, 512), keep_ratio=True),
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
    dict(type='MultiTaskResize', scale=(512, 512), keep_ratio=True),
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
