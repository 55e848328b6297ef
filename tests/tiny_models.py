"""Tiny randomly initialised models the tests build and save, loaded back like a user's model.

Each has a few layers, a small vocabulary and a real tokenizer trained here on a few sentences,
saved with ``save_pretrained`` so the engine loads it through ``from_pretrained``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A language model predicts the next token from the tokens before it.",
    "Translate English to German: the house is small. Das Haus ist klein.",
    "Summarize: scientists measured the effect of sleep on memory in a large study.",
    "What is the capital of France? The capital of France is Paris.",
    "Numbers like 1, 2, 3 and 42 appear in text; so do commas, colons and question marks?",
    "Der schnelle braune Fuchs springt über den faulen Hund. 你好，世界。",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _bpe_tokenizer(specials: list[str], vocab_size: int = 320) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def build_causal(folder: Path, chat_template: bool = True, seed: int = 0, layers: int = 2,
                 max_positions: int = 128, hidden: int = 48, never_ends: bool = False) -> Path:
    """A Llama-shaped causal LM (BOS prepended) with an optional chat template.

    ``never_ends`` zeroes the output row of the end-of-turn token, so greedy decoding (which
    always finds some positive logit) runs to ``max_new_tokens``.
    """
    specials = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tok = _bpe_tokenizer(specials)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>", pad_token="<pad>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
        initializer_range=0.3, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    if never_ends:
        with torch.no_grad():
            model.lm_head.weight[fast.eos_token_id] = 0.0
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def build_seq2seq(folder: Path, seed: int = 0) -> Path:
    """A T5-shaped encoder-decoder."""
    tok = _bpe_tokenizer(["<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(fast), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id, decoder_start_token_id=fast.pad_token_id,
        initializer_factor=3.0,
    )
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def build_masked(folder: Path, seed: int = 0) -> Path:
    """A BERT-shaped masked LM with a WordPiece tokenizer."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=fast.pad_token_id)
    model = BertForMaskedLM(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
