"""`compile_fusion` compiled for real (inductor on the CPU, which needs a C++ compiler): the same losses over three
optimiser steps as the eager network, and the same outputs after them in eval mode. Slow: compiling takes most of a
minute on 2 cores."""
import copy, shutil

import pytest
import torch

from ssmnas.backbones import build_backbones
from ssmnas.data import Modality
from ssmnas.losses import NTXentLoss
from ssmnas.loop import Encoder, Network, compile_fusion
from ssmnas.supernet import FusionSupernet, ProjectionHead

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which('c++') or shutil.which('g++')), reason='no C++ compiler')]


def _net():
    torch.manual_seed(0)
    bb = build_backbones({'plot': Modality('plot', 'vector', (12,)), 'meta': Modality('meta', 'vector', (6,))})
    fusion = FusionSupernet(bb.tap_names, bb.tap_shapes(), C=8, L=4, dropout=0.0)   # no dropout: same draws
    return Network(Encoder(bb, fusion), ProjectionHead(fusion.out_dim, 16, 8))


def _step(net, opt, taps, loss_fn):
    loss = loss_fn(*net.from_taps(taps).chunk(2))
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return loss.detach()


def test_compiled_fusion_matches_eager():
    eager = _net()
    compiled = compile_fusion(copy.deepcopy(eager))
    assert compiled.from_taps is compiled._compiled_from_taps
    x0 = {'plot': torch.randn(4, 12), 'meta': torch.randn(4, 6)}
    other = _net()                                      # explained on a third copy: it runs the network
    graphs = torch._dynamo.explain(type(other).from_taps)(other, other.encoder.taps(x0))
    assert (graphs.graph_count, graphs.graph_break_count) == (1, 0)     # the whole fusion path is one graph
    x = {'plot': torch.randn(32, 12), 'meta': torch.randn(32, 6)}
    taps = eager.encoder.taps(x)
    loss_fn = NTXentLoss(0.5)
    # plain SGD: Adam would scale up the rounding noise in the gradient of a bias before batch norm (mathematically
    # zero), differently in each network, and that bias reaches eval mode through the running mean
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in (eager, compiled)]
    for _ in range(3):                                          # train mode: losses and updated weights agree
        losses = [_step(n, o, taps, loss_fn) for n, o in zip((eager, compiled), opts)]
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-5, msg=name)
    eager.eval(); compiled.eval()                                # eval mode (one more compilation), live inputs
    with torch.no_grad(): torch.testing.assert_close(compiled(x), eager(x), rtol=1e-3, atol=1e-4)


def test_fusion_bench_graph_path():
    "The fusion bench's CUDA-graph path (static shapes, torch.compile mode 'reduce-overhead'; on the CPU torch skips"
    "the CUDA graphs, so this checks the plumbing) from a fresh dynamo cache, profiled, its settings not leaking."
    from ssmnas.bench import bench_fusion
    rec = bench_fusion('cpu', batch_sizes=(16,), paths=('compiled_graphs',), n_rows=96, C=8, height=32, width=32,
                       repeats=1, profile=2, log=lambda m: None)
    assert rec['runs'][0]['graphs'] > 0 and rec['runs'][0]['vs_eager'] is None      # no eager run to compare with
    assert [(p['path'], p['compiled']) for p in rec['profile']] == [('compiled_graphs', True)]
    assert rec['profile'][0]['wall_ms'] > 0
    assert torch._dynamo.config.automatic_dynamic_shapes          # the static setting did not leak
