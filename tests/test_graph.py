"""Conversation-graph builder and the Eq. 15-17 relational attention layer."""

import pytest
import torch
from torch_geometric.nn import MessagePassing

from sklearn_cberl.nn.mgnn import (
    RELATIONS,
    RelationalAttentionConv,
    build_conversation_graph,
    num_relations,
)

PO, PS, FO, FS, SELF = range(5)  # past-other, past-same, future-other, future-same, self


def _edges(edge_index, edge_type):
    return {(int(s), int(t), int(r)) for s, t, r in zip(*edge_index.tolist(), edge_type.tolist())}


def _reference(batch, position, speaker, wp, wf):
    """Naive double loop over nodes: the specification the vectorised builder must match."""
    out = set()
    n = len(batch)
    for i in range(n):
        for j in range(n):
            if batch[i] != batch[j]:
                continue
            d = position[j] - position[i]
            if (wp is not None and d < -wp) or (wf is not None and d > wf):
                continue
            if i == j:
                r = SELF
            else:
                r = 2 * int(d > 0) + int(speaker[i] == speaker[j])
            out.add((j, i, r))
    return out


def test_hand_made_two_speaker_dialogue():
    # Speakers A B A A B; node i receives from j = i-2 .. i+1.
    batch = torch.zeros(5, dtype=torch.long)
    position = torch.arange(5)
    speaker = torch.tensor([0, 1, 0, 0, 1])
    ei, et = build_conversation_graph(batch, position, speaker, window_past=2, window_future=1)
    expected = {
        # target 0 (A): self, future 1 (B)
        (0, 0, SELF), (1, 0, FO),
        # target 1 (B): past 0 (A), self, future 2 (A)
        (0, 1, PO), (1, 1, SELF), (2, 1, FO),
        # target 2 (A): past 0 (A), past 1 (B), self, future 3 (A)
        (0, 2, PS), (1, 2, PO), (2, 2, SELF), (3, 2, FS),
        # target 3 (A): past 1 (B), past 2 (A), self, future 4 (B)
        (1, 3, PO), (2, 3, PS), (3, 3, SELF), (4, 3, FO),
        # target 4 (B): past 2 (A), past 3 (A), self
        (2, 4, PO), (3, 4, PO), (4, 4, SELF),
    }  # fmt: skip
    assert _edges(ei, et) == expected
    assert ei.shape[1] == len(expected)  # no duplicates
    # Sorted by target, as documented.
    assert torch.all(ei[1][1:] >= ei[1][:-1])


def test_windows_zero_and_whole_dialogue():
    batch = torch.zeros(4, dtype=torch.long)
    position = torch.arange(4)
    speaker = torch.tensor([0, 1, 0, 1])
    ei, et = build_conversation_graph(batch, position, speaker, window_past=0, window_future=0)
    assert _edges(ei, et) == {(i, i, SELF) for i in range(4)}
    ei, et = build_conversation_graph(
        batch, position, speaker, window_past=None, window_future=None
    )
    assert ei.shape[1] == 16
    assert {(3, 0, FO), (2, 0, FS), (0, 3, PO), (1, 3, PS)} <= _edges(ei, et)
    # Past only: no future relation anywhere.
    ei, et = build_conversation_graph(batch, position, speaker, window_past=None, window_future=0)
    assert not ({FO, FS} & set(et.tolist()))
    assert ei.shape[1] == 4 + 3 + 2 + 1


def test_matches_naive_reference_on_a_random_batch():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 15, (12,), generator=g)
    batch = torch.repeat_interleave(torch.arange(12), lengths)
    position = torch.cat([torch.arange(int(n)) for n in lengths])
    speaker = torch.randint(0, 3, (len(batch),), generator=g)
    for wp, wf in [(10, 10), (2, 5), (None, 3), (0, None), (None, None)]:
        ei, et = build_conversation_graph(
            batch, position, speaker, window_past=wp, window_future=wf
        )
        assert _edges(ei, et) == _reference(
            batch.tolist(), position.tolist(), speaker.tolist(), wp, wf
        )


def test_no_edges_between_dialogues_and_singletons_get_self_loops():
    batch = torch.tensor([0, 1, 1, 2])
    position = torch.tensor([0, 0, 1, 0])
    speaker = torch.tensor([0, 0, 1, 0])
    ei, et = build_conversation_graph(batch, position, speaker)
    assert _edges(ei, et) == {(0, 0, SELF), (1, 1, SELF), (2, 1, FO), (1, 2, PO), (2, 2, SELF),
                              (3, 3, SELF)}  # fmt: skip


def test_pair_relations_follow_dialoguegcn():
    batch = torch.zeros(3, dtype=torch.long)
    position = torch.arange(3)
    speaker = torch.tensor([0, 1, 2])  # third speaker shares slot 1 when max_speakers=2
    ei, et = build_conversation_graph(
        batch, position, speaker, relations="pair", max_speakers=2, window_past=None
    )
    assert num_relations("pair", 2) == 9
    edges = _edges(ei, et)
    # (direction * S + speaker_src) * S + speaker_dst
    assert (0, 1, (0 * 2 + 0) * 2 + 1) in edges  # past, A -> B
    assert (1, 0, (1 * 2 + 1) * 2 + 0) in edges  # future, B -> A
    assert (1, 2, (0 * 2 + 1) * 2 + 1) in edges  # past, B -> C (C folded into slot 1)
    assert {r for s, t, r in edges if s == t} == {8}


def test_invalid_relations_raises():
    with pytest.raises(ValueError, match="relations"):
        num_relations("speakers")
    with pytest.raises(ValueError, match="relations"):
        build_conversation_graph(
            torch.zeros(2, dtype=torch.long), torch.arange(2), torch.zeros(2, dtype=torch.long),
            relations="x",
        )  # fmt: skip


def _graph():
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([5, 1, 7])
    batch = torch.repeat_interleave(torch.arange(3), lengths)
    position = torch.cat([torch.arange(int(n)) for n in lengths])
    speaker = torch.randint(0, 2, (len(batch),), generator=g)
    ei, et = build_conversation_graph(batch, position, speaker, window_past=3, window_future=2)
    x = torch.randn(len(batch), 6, generator=g)
    return x, ei, et


def test_attention_is_a_softmax_over_each_nodes_neighbours():
    torch.manual_seed(0)
    conv = RelationalAttentionConv(6, 4, len(RELATIONS), attention_hidden=(8, 5))
    x, ei, et = _graph()
    w = conv.attention(x, ei, et)
    assert w.shape == (ei.shape[1],)
    assert torch.all(w > 0) and torch.all(w <= 1)
    totals = torch.zeros(x.shape[0]).index_add_(0, ei[1], w)
    torch.testing.assert_close(totals, torch.ones(x.shape[0]))
    # A node whose only edge is its self-loop gives it weight 1.
    lone = 5  # the one-utterance dialogue
    assert float(w.detach()[ei[1] == lone]) == pytest.approx(1.0)


def test_message_passing_matches_eq17_written_out():
    torch.manual_seed(0)
    conv = RelationalAttentionConv(6, 4, len(RELATIONS), attention_hidden=(8,))
    assert isinstance(conv, MessagePassing)
    x, ei, et = _graph()
    out = conv(x, ei, et)
    w = conv.attention(x, ei, et).detach()
    expected = torch.zeros(x.shape[0], 4)
    for i in range(x.shape[0]):
        for r in range(len(RELATIONS)):
            sel = (ei[1] == i) & (et == r)
            c = int(sel.sum())
            for e in torch.nonzero(sel).flatten().tolist():
                j = int(ei[0, e])
                expected[i] += w[e] / c * (x[j] @ conv.weight[r]).detach()
    expected = torch.relu(expected + conv.bias.detach())
    torch.testing.assert_close(out.detach(), expected, rtol=1e-5, atol=1e-5)


def test_layer_gradients_reach_attention_and_weights():
    torch.manual_seed(0)
    conv = RelationalAttentionConv(6, 4, len(RELATIONS), attention_hidden=(8, 5))
    x, ei, et = _graph()
    conv(x, ei, et).sum().backward()
    assert conv.weight.grad.abs().sum() > 0
    assert conv.att_target.weight.grad.abs().sum() > 0
    assert conv.att_relation.weight.grad.abs().sum() > 0


def test_pair_mode_layer_runs_with_many_relations():
    torch.manual_seed(0)
    batch = torch.zeros(6, dtype=torch.long)
    position = torch.arange(6)
    speaker = torch.tensor([0, 1, 2, 3, 4, 5])
    R = num_relations("pair", 9)
    ei, et = build_conversation_graph(batch, position, speaker, relations="pair", max_speakers=9)
    conv = RelationalAttentionConv(3, 2, R, attention_hidden=(4,))
    w = conv.attention(torch.randn(6, 3), ei, et)
    totals = torch.zeros(6).index_add_(0, ei[1], w)
    torch.testing.assert_close(totals, torch.ones(6))
    assert conv(torch.randn(6, 3), ei, et).shape == (6, 2)


def test_empty_batch():
    empty = torch.zeros(0, dtype=torch.long)
    ei, et = build_conversation_graph(empty, empty, empty)
    assert ei.shape == (2, 0) and et.shape == (0,)
