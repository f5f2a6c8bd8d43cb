# Toy NYUD-v2 multi-task (data/toy_nyud_mt: 30 train / 15 val synthetic rooms of 64-96 px in
# the InvPT .png variant, made by tools/misc/make_toy_nyud_mt.py). Same pipelines as
# nyud_mt.py at 64x64, sized for a 2-core CPU. Depth NaN/inf values would be masked as
# invalid (0) when loaded, as for the real data. No val_evaluator here: see the experiments.
#
# `tasks` below is the experiment's one statement of its tasks: a config that inherits this
# file and sets `tasks = ('semseg', 'normals')` changes the model, the datasets and the
# evaluator (mmase.engine.experiment_tasks, run by MultiTaskRunner and the mmase tools).
tasks = ('semseg', 'depth', 'normals', 'edge')
dataset_type = 'NYUDv2MTDataset'
data_root = '{{$MMASE_TOY_NYUD_MT:data/toy_nyud_mt}}'  # $MMASE_TOY_NYUD_MT or cwd/data
crop_size = (64, 64)  # (h, w)

train_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        scale=(80, 80),
        ratio_range=(0.8, 1.2),
        keep_ratio=True),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=crop_size),
    dict(type='PackMultiTaskInputs')
]
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='MultiTaskResize', scale=(64, 64), keep_ratio=True),
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
    dict(type='MultiTaskResize', scale=(64, 64), keep_ratio=True),
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
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gt_sets/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gt_sets/val.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
