"""Left-padded greedy decoding through transformers' ``generate``, for comparing kernels."""

import torch


def greedy(model, rows, pad_id, steps=12):
    """Left-padded greedy decoding with transformers' generate: new tokens and the scores."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=steps,
            min_new_tokens=steps,
            do_sample=False,
            pad_token_id=pad_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
    return out.sequences[:, width:], torch.stack(out.scores)
