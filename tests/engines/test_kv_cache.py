"""The in-place growing key/value cache: the same tokens as transformers' own cache, no copies."""

import torch

from lmwidgets.engines.base import GenerationSettings
from lmwidgets.engines.transformers.generation import Row, generate_batch
from lmwidgets.engines.transformers.kv_cache import growing_cache


def test_layers_grow_in_place_and_match_concatenation():
    from transformers import DynamicCache

    ours, theirs = growing_cache(DynamicCache(), None, reserve=3), DynamicCache()
    first = (torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4))
    for cache in (ours, theirs):
        cache.update(*first, 0)
    buffer = ours.layers[0].keys.data_ptr()
    for step in range(6):  # past the reserve: the buffer is reallocated once, then reused
        new = (torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4))
        keys, values = ours.update(*new, 0)
        expected = theirs.update(*new, 0)
        assert torch.equal(keys, expected[0]) and torch.equal(values, expected[1])
        if step < 3:
            assert keys.data_ptr() == buffer  # written in place, no copy of the cache
    assert ours.get_seq_length() == theirs.get_seq_length() == 11
    ours.crop(-2)  # cropping and writing again still lines up
    theirs.crop(-2)
    new = (torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4))
    assert torch.equal(ours.update(*new, 0)[0], theirs.update(*new, 0)[0])
    ours.batch_select_indices(torch.tensor([1]))  # a new tensor: the next step copies it once
    theirs.batch_select_indices(torch.tensor([1]))
    new = (torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4))
    assert torch.equal(ours.update(*new, 0)[1], theirs.update(*new, 0)[1])


def test_batched_generation_equals_plain_generate(tiny_dir, registry):
    import lmwidgets

    loaded = lmwidgets.load_model(str(tiny_dir), name="m", cpu_kernels="plain")
    prompts = [[1, 5, 9, 13], [2, 4, 6, 8, 10, 12, 14, 16, 18], [3, 7]]
    outcome = generate_batch(
        loaded.model,
        loaded.tokenizer,
        [Row(ids) for ids in prompts],
        GenerationSettings(max_new_tokens=12),
        ignore_eos=True,
    )
    for ids, output in zip(prompts, outcome.outputs, strict=True):
        tensor = torch.tensor([ids])
        with torch.inference_mode():
            plain = loaded.model.generate(
                input_ids=tensor,
                attention_mask=torch.ones_like(tensor),
                max_new_tokens=12,
                min_new_tokens=12,
                do_sample=False,
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
        assert output.token_ids == plain[0, len(ids) :].tolist()
