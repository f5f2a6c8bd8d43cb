"""tools/analysis/plot_expert_activation.py on a hand-written ExpertActivationHook record: cell
values, epoch choice, errors naming the epoch and the file."""
import json
import os.path as osp
import runpy

import numpy as np
import pytest

from tool_helpers import ROOT

TOOL = runpy.run_path(osp.join(ROOT, 'tools', 'analysis', 'plot_expert_activation.py'))


def record():
    def entry(counts, tokens, shared):
        return dict(counts=counts, tokens=tokens, selection_rate=[c / tokens for c in counts],
                    sparse_mass=1 - shared, shared_mass=shared)
    epochs = {}
    for epoch, shared in ((1, 0.6), (2, 0.4), (5, 0.2)):
        epochs[str(epoch)] = dict(sal={
            'blocks.0.mlp': entry([8.0, 2.0, 0.0], 10, shared),  # top-1 of 3, 1 shared
            'blocks.1.mlp': entry([4.0, 4.0, 2.0], 10, shared / 2)})
    return dict(format='mmase.expert_activation/1', world_size=1, tasks=['sal'],
                layers={'blocks.0.mlp': dict(num_sparse=3, num_shared=1),
                        'blocks.1.mlp': dict(num_sparse=3, num_shared=2)},
                epochs=epochs)


@pytest.fixture
def record_file(tmp_path):
    path = tmp_path / 'expert_activation.json'
    path.write_text(json.dumps(record()))
    return path


def test_cells_are_selection_rates_then_gate_weight_per_shared_expert():
    values, layers, max_sparse = TOOL['activation_matrix'](record(), 'sal', 2)
    assert layers == ['blocks.0.mlp', 'blocks.1.mlp'] and max_sparse == 3
    np.testing.assert_allclose(values[0], [0.8, 0.2, 0.0, 0.4, np.nan])  # one shared: 0.4
    np.testing.assert_allclose(values[1], [0.4, 0.4, 0.2, 0.1, 0.1])  # two share 0.2
    epochs, series = TOOL['shared_mass_series'](record(), 'sal')
    assert epochs == [1, 2, 5] and series['blocks.1.mlp'] == [0.3, 0.2, 0.1]


def test_epoch_choice_and_errors(record_file, tmp_path):
    rec = record()
    assert TOOL['choose_epochs'](rec, None, 'f') == [1, 2, 5]  # first, middle, last
    assert TOOL['choose_epochs'](rec, [5, 1], 'f') == [5, 1]
    with pytest.raises(ValueError, match=r'--epochs 3 40: not recorded in f \(recorded epochs: '
                       r'1, 2, 5\)'):
        TOOL['choose_epochs'](rec, [1, 3, 40], 'f')
    with pytest.raises(ValueError, match=r'--tasks edge: not recorded in f \(tasks: sal\)'):
        TOOL['choose_tasks'](rec, ['edge'], 'f')
    (tmp_path / 'out').mkdir()
    with pytest.raises(FileNotFoundError, match='out/expert_activation.json.*no such file'):
        TOOL['load_record'](str(tmp_path / 'out'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(semseg=1)))
    with pytest.raises(ValueError, match='not an ExpertActivationHook record'):
        TOOL['load_record'](str(bad))


def test_writes_the_figures(record_file, tmp_path):
    written = TOOL['main']([str(record_file.parent), '--epochs', '1', '5', '--out',
                            str(tmp_path / 'out')])
    assert [osp.basename(p) for p in written] == ['expert_activation_sal.png',
                                                  'shared_gate_mass.png']
    assert all(osp.getsize(p) > 5000 for p in written)


def test_dpi_format_labels_and_fitted_range(record_file, tmp_path):
    import matplotlib.pyplot as plt
    written = TOOL['main']([str(record_file.parent), '--epochs', '1', '5', '--out',
                            str(tmp_path / 'vec'), '--format', 'pdf', '--dpi', '200'])
    assert [osp.basename(p) for p in written] == ['expert_activation_sal.pdf',
                                                  'shared_gate_mass.pdf']
    assert all(open(p, 'rb').read(4) == b'%PDF' for p in written)
    record = TOOL['load_record'](str(record_file))[1]
    captured = {}
    savefig = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        captured[osp.basename(args[0])] = (fig, kwargs.get('dpi'))
        return savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep
    try:
        TOOL['plot_shared_mass'](record, ['sal'], str(tmp_path / 'm.png'), 150)
        TOOL['plot_heatmaps'](record, 'sal', [1, 5], str(tmp_path / 'h.png'), 150)
    finally:
        plt.Figure.savefig = savefig
    fig, dpi = captured['m.png']
    assert dpi == 150
    ax = fig.axes[0]
    assert ax.get_xlabel() == 'epoch' and ax.get_ylabel()
    _, series = TOOL['shared_mass_series'](record, 'sal')
    values = [v for row in series.values() for v in row if np.isfinite(v)]
    low, high = ax.get_ylim()
    assert low <= min(values) and high >= max(values)
    assert high - low <= (max(values) - min(values)) * 1.2 + 0.02  # fitted, not [0, 1]
    heat, _ = captured['h.png']
    assert all(a.get_xlabel() for a in heat.axes[:2]) and heat.axes[0].get_ylabel() == 'layer'
