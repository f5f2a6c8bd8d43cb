"""mmase.apis.init_model / inference_model: every task at the original size, without labels."""
import copy
import os
import os.path as osp
import struct
import sys
import zlib

import cv2
import numpy as np
import pytest
import torch
from api_helpers import ROOT, TINY_MODEL, TOY_CONFIG, tiny_config, toy_image
from mmengine.dataset import pseudo_collate
from mmengine.runner.checkpoint import save_checkpoint
from mmseg.registry import DATASETS

from mmase.apis import inference_model, init_model, predict_pipeline
from mmase.engine import apply_experiment_tasks
from mmase.engine.strict_loading import CheckpointMismatchError


@pytest.fixture(scope='module')
def model(tiny_model):
    torch.set_num_threads(1)
    return init_model(TOY_CONFIG, tiny_model.checkpoint, device='cpu', cfg_options=TINY_MODEL)


def test_three_lines_predict_every_task_at_original_size(model):
    path = toy_image(40)
    height, width = cv2.imread(path).shape[:2]
    sample = inference_model(model, path)
    assert sample.ori_shape == (height, width)
    sem = sample.pred_sem_seg.data
    parts = sample.pred_human_parts.data
    assert sem.shape == (1, height, width) and sem.dtype == torch.int64
    assert 0 <= int(sem.min()) and int(sem.max()) < 21
    assert parts.shape == (1, height, width) and int(parts.max()) < 7
    for field in ('pred_sal', 'pred_edge'):
        prob = getattr(sample, field).data
        assert prob.shape == (1, height, width)
        assert 0.0 <= float(prob.min()) and float(prob.max()) <= 1.0
    normals = sample.pred_normals.data
    assert normals.shape == (3, height, width)
    torch.testing.assert_close(normals.norm(dim=0), torch.ones(height, width), atol=1e-4,
                               rtol=0)
    assert model.dataset_meta['task_classes']['human_parts'][1] == 'head'


def test_same_prediction_as_the_labelled_test_pipeline(model):
    """The label-free pipeline predicts exactly what the dataset's test pipeline does."""
    cfg = tiny_config()
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset = DATASETS.build(dataset_cfg)
    item = dataset[0]
    assert 'gt_sem_seg' in item['data_samples']
    with torch.no_grad():
        reference = model.test_step(pseudo_collate([item]))[0]
    sample = inference_model(model, item['data_samples'].img_path)
    assert torch.equal(sample.pred_sem_seg.data, reference.pred_sem_seg.data)
    torch.testing.assert_close(sample.pred_normals.data, reference.pred_normals.data)
    torch.testing.assert_close(sample.pred_sal.data, reference.pred_sal.data)
    assert 'gt_sem_seg' not in sample  # no labels read


def test_annotation_transforms_dropped(model):
    types = [t['type'] for t in predict_pipeline(model.cfg)]
    assert 'LoadMultiTaskAnnotations' not in types and types[0] == 'LoadMultiTaskImageFromFile'
    assert [t['type'] for t in model.cfg.test_pipeline] == types


def test_batch_array_and_task_selection(model):
    path = toy_image(41)
    single = inference_model(model, path)
    bgr = cv2.imread(path)
    batch = inference_model(model, [path, bgr], tasks=['sal', 'semseg'])
    assert isinstance(batch, list) and len(batch) == 2
    for sample in batch:
        assert set(sample.keys()) == {'pred_sal', 'pred_sem_seg'}
        torch.testing.assert_close(sample.pred_sal.data, single.pred_sal.data)


def test_mmseg_inference_model_on_an_mmase_model(model):
    from mmseg.apis import inference_model as mmseg_inference_model
    sample = mmseg_inference_model(model, toy_image(42))
    assert 'pred_normals' in sample and 'pred_sem_seg' in sample


def test_mmseg_init_model_accepts_the_multitask_config(tiny_model):
    from mmseg.apis import init_model as mmseg_init_model
    from mmseg.apis import inference_model as mmseg_inference_model
    with pytest.raises(ValueError, match='apply_experiment_tasks'):  # model.tasks is not set
        mmseg_init_model(tiny_config(), tiny_model.checkpoint, device='cpu')
    cfg = apply_experiment_tasks(tiny_config())  # the config's top-level tasks
    model = mmseg_init_model(cfg, tiny_model.checkpoint, device='cpu')
    assert tuple(model.tasks) == ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    with pytest.raises(KeyError, match='mmase.apis.inference_model'):
        mmseg_inference_model(model, toy_image(42))  # its raw test pipeline reads labels


def test_bad_inputs_name_the_file_or_task(model, tmp_path):
    missing = str(tmp_path / 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        inference_model(model, missing)
    not_image = tmp_path / 'notes.jpg'
    not_image.write_text('not an image')
    with pytest.raises(ValueError, match='notes.jpg'):
        inference_model(model, str(not_image))
    with pytest.raises(ValueError, match="task 'depth'.*predicts only"):
        inference_model(model, toy_image(40), tasks=['depth'])
    with pytest.raises(ValueError, match=r'\(H, W\) or \(H, W, 3\)'):
        inference_model(model, np.zeros((4, 4, 5), np.uint8))


def test_checkpoint_of_another_config_names_file_and_keys(tmp_path):
    cfg = tiny_config()
    cfg.merge_from_dict({'model.backbone.arch.num_layers': 3, 'model.backbone.out_indices': [1, 2]})
    other = init_model(cfg, None)
    path = str(tmp_path / 'three_blocks.pth')
    save_checkpoint(dict(state_dict=other.state_dict(), meta={}), path)
    with pytest.raises(CheckpointMismatchError, match=r'three_blocks\.pth.*unexpected keys.*'
                                                      r'backbone\.blocks\.2'):
        init_model(tiny_config(), path)
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        init_model(tiny_config(), str(tmp_path / 'absent.pth'))



def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height RGB pixels, with no pixel data."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b''))
            + chunk(b'IEND', b''))


def test_pixel_limit_before_decoding_at_every_entry_point(model, tiny_model, tmp_path,
                                                          monkeypatch):
    """A 30000 x 30000 PNG header (a few hundred bytes, 2.7 GB decoded) is refused from its
    header, naming the file and both sizes, by inference_model, the inferencer and the demo;
    the limit is an argument (passed on to the pipeline's loader) or $MMASE_MAX_IMAGE_PIXELS."""
    from mmase.apis import MultiTaskInferencer
    from mmase.utils.image_limits import ImageTooLargeError
    sys.path.insert(0, osp.join(ROOT, 'demo'))
    import image_demo

    bomb = tmp_path / 'bomb.png'
    bomb.write_bytes(_png_header(30000, 30000))
    message = r'bomb\.png is 30000x30000 = 900000000 pixels, more than the limit of 268435456'
    with pytest.raises(ImageTooLargeError, match=message):
        inference_model(model, str(bomb))
    inferencer = MultiTaskInferencer(model=tiny_model.config, weights=tiny_model.checkpoint,
                                     device='cpu')
    with pytest.raises(ImageTooLargeError, match=message):
        inferencer([toy_image(40), str(bomb)])
    with pytest.raises(ImageTooLargeError, match=message):
        image_demo.main([str(bomb), TOY_CONFIG, tiny_model.checkpoint, '--out-dir',
                         str(tmp_path / 'out'), '--device', 'cpu', '--cfg-options',
                         'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]'])
    path = toy_image(40)
    height, width = cv2.imread(path).shape[:2]
    pixels = width * height
    small = f'{width}x{height} = {pixels} pixels, more than the limit of {pixels - 1}'
    with pytest.raises(ImageTooLargeError, match=small):
        inference_model(model, path, max_pixels=width * height - 1)
    with pytest.raises(ImageTooLargeError, match=small):
        inference_model(model, cv2.imread(path), max_pixels=width * height - 1)
    monkeypatch.setenv('MMASE_MAX_IMAGE_PIXELS', str(width * height - 1))
    with pytest.raises(ImageTooLargeError, match=small):
        inference_model(model, path)
    # a limit raised by the argument reaches the pipeline's LoadImageFromFile too
    assert inference_model(model, path, max_pixels=width * height).pred_sem_seg.shape == (
        height, width)
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.jpg: the file is empty'):
        inference_model(model, str(empty))


# Run in a fresh process: predict a small image (warm-up: kernels compiled, caches filled), then
# cap the heap (RLIMIT_DATA: anonymous memory, not the mapped libraries) at CAP_MB above what the
# process holds, and predict the large image.
MEMORY_CAPPED = '''
import resource, sys
import torch
from api_helpers import TINY_MODEL, TOY_CONFIG, toy_image
from mmase.apis import inference_model, init_model
torch.set_num_threads(1)
model = init_model(TOY_CONFIG, None, device='cpu', cfg_options=TINY_MODEL)
inference_model(model, toy_image(40))
data = next(int(line.split()[1]) * 1024 for line in open('/proc/self/status')
            if line.startswith('VmData'))
resource.setrlimit(resource.RLIMIT_DATA, (data + int(sys.argv[2]) * 2**20, resource.RLIM_INFINITY))
sample = inference_model(model, sys.argv[1])
print('predicted', tuple(sample.pred_sem_seg.shape), tuple(sample.pred_normals.shape))
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='RLIMIT_DATA, /proc')
def test_large_image_predicted_in_bounded_memory(tmp_path):
    """A 2000 x 2000 image under a 300 MB heap cap: its five predictions at full size take
    144 MB (class ids int64 x 2, probabilities float32 x 2, normals 3 x float32), while
    upsampling the 21 semseg logits before the argmax (the code the audit ran) needs 336 MB for
    that tensor alone and runs out of memory under this cap (checked); the post-processing
    (mmase.models.segmentors.output_restore) works in bounded memory."""
    import subprocess
    side = 2000
    y, x = np.mgrid[0:side, 0:side]
    image = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], -1)
    path = str(tmp_path / 'large.jpg')
    cv2.imwrite(path, image.astype(np.uint8))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               PYTHONPATH=os.pathsep.join([osp.join(ROOT, 'tests', 'test_apis'),
                                           os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-c', MEMORY_CAPPED, path, '300'], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'predicted (2000, 2000) (2000, 2000)' in proc.stdout, proc.stdout[-2000:]
