"""A word-level tokenizer trained with `tokenizers`, wrapped as a transformers fast tokenizer.

The shapes world has a closed vocabulary of a few hundred words, so a word-level model keeps
sequences short (one token per word) and makes every generated token a readable word.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<s>", "</s>", "<image>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, IMAGE]


def train_word_tokenizer(texts: Iterable[str], extra_words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Train a lowercase word-level tokenizer; ``extra_words`` guarantees coverage of a closed vocabulary."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    # "<image>" must survive pre-tokenisation whole; special tokens are matched before this runs.
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    tokenizer.train_from_iterator(list(texts) + [" ".join(extra_words)], trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={"image_token": IMAGE},
        model_max_length=512,
    )
