"""WordPiece subwords of the v2 IMDB subword labs, computed outside both frameworks so both see the same ids.

The course (C3_W2_Lab_3 and the C3W3 IMDB labs) learns a WordPiece vocabulary of about 8,000
entries from the training reviews with tensorflow_text's `bert_vocab_from_dataset`
(BertTokenizer(lower_case=True) splitting, reserved tokens [PAD] and [UNK]), saves it as
`imdb_vocab_subwords.txt` (7,635 lines) and tokenizes with `BertTokenizer` over that file.

Here the vocabulary is learnt with Hugging Face `tokenizers` (`learn_vocabulary`): a
`WordPieceTrainer` of `LEARNT_VOCAB_SIZE` entries over text split as BERT splits it
(`BertNormalizer`: control characters removed, whitespace unified, CJK characters spaced,
lower-cased with accents stripped; `BertPreTokenizer`: whitespace and punctuation). Token ids are
positions in the vocabulary ([PAD] 0, [UNK] 1); a word is split greedily, longest piece first,
continuation pieces prefixed "##", and a word that cannot be split (or longer than
MAX_WORD_CHARS characters) becomes one [UNK], as in BertTokenizer. `--vocab PATH` reads the
course's own file, or any file of one token per line, instead (`read_vocabulary`); "course"
fetches the course's file (`COURSE_VOCAB`).

How the learnt vocabulary differs from the course's (docs/text_data.md has the numbers):
- The algorithm. tensorflow_text's learner counts whole words, then keeps the pieces that a
  greedy longest-match split of the words would use, searching a count threshold that brings
  the vocabulary near the requested size, which is why the course's file has 7,635 entries, not
  8,000. `tokenizers` trains WordPiece as byte-pair encoding (merges of the most frequent
  adjacent pair) and stops at exactly `vocab_size` entries (fewer only on tiny data). So the
  entries, their order and their number differ; the model's Embedding gets the learnt size
  (`DataSplit.info["spec_overrides"]`).
- Determinism. tokenizers 0.23's trainer numbers the "##" continuation characters in hash-map
  order, which differs per process, and merge ties are broken by those numbers, so two
  trainings on the same text can give different ids or even different pieces (huggingface/
  tokenizers#1794). `learn_vocabulary` names every "##" character first, sorted, as special
  tokens of a second training, so that no id depends on hash order. Pair counts are sums and the
  merge order is total, so the thread count does not matter either (checked by tests).
- Splitting: tensorflow_text limits a word to 100 bytes, `tokenizers` to 100 characters.

Learnt vocabularies are cached in $PARITY_CACHE_DIR/subwords/<key>.txt (one token per line,
its sha256 recorded beside it and checked before use, `parity.cache`), the key a sha256 of
the training texts, the settings, this module's code and the `tokenizers` version.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from parity import cache
from parity.errors import DataError
from parity.fileio import write_text_atomic

RESERVED_TOKENS = ("[PAD]", "[UNK]")  # ids 0 and 1, the course's reserved tokens
PAD_ID, UNK_ID = 0, 1
PREFIX = "##"  # marks a piece that continues a word
LEARNT_VOCAB_SIZE = 8_000  # the course's bert_vocab_from_dataset(vocab_size=8000)
MAX_WORD_CHARS = 100  # longer words become [UNK] (tensorflow_text: max_bytes_per_word=100)
COURSE_VOCAB = "course"  # `--vocab course`: the course's imdb_vocab_subwords.txt (downloaded, cached)
SUBWORDS_DIR = "subwords"


def learn_vocabulary(texts: Sequence[str], vocab_size: int = LEARNT_VOCAB_SIZE) -> tuple[str, ...]:
    """A WordPiece vocabulary of at most `vocab_size` tokens learnt from `texts`, [PAD] and [UNK] first.

    Deterministic: the same texts give the same tokens in the same order, whatever the process or
    thread count (see the module docstring for the two trainings this takes).
    """
    if vocab_size <= len(RESERVED_TOKENS):
        raise DataError(f"a subword vocabulary of {vocab_size} leaves no room beside {', '.join(RESERVED_TOKENS)}; "
                        "ask for more tokens")
    if not texts:
        raise DataError("no training texts to learn a subword vocabulary from")
    initial = _train(texts, RESERVED_TOKENS, 0)  # no merges: the reserved tokens, the characters and "##" + each
    continuations = sorted(token for token in initial if token.startswith(PREFIX) and token not in RESERVED_TOKENS)
    return _train(texts, (*RESERVED_TOKENS, *continuations), vocab_size)


def cached_vocabulary(texts: Sequence[str], vocab_size: int = LEARNT_VOCAB_SIZE) -> tuple[str, ...]:
    """`learn_vocabulary(texts, vocab_size)`, from the cache when an entry for these texts passes its check."""
    path = cache.cache_root() / SUBWORDS_DIR / f"{_key(texts, vocab_size)}.txt"
    with cache.entry_lock(f"{SUBWORDS_DIR}-{path.stem}"):
        problem = _cached_problem(path)
        if problem is None:
            return read_vocabulary(path)
        if problem != "missing":
            cache.note(f"parity: the subword vocabulary cache entry {path} {problem}; learning it again")
        vocabulary = learn_vocabulary(texts, vocab_size)
        write_text_atomic(path, "".join(f"{token}\n" for token in vocabulary))
        cache.record_sha256(path)
        return vocabulary


def read_vocabulary(path: str | os.PathLike) -> tuple[str, ...]:
    """The tokens of a vocabulary file, one per line (the course's imdb_vocab_subwords.txt format), in id order.

    The file must be UTF-8, start with [PAD] and [UNK], and hold each token once; anything else
    is a DataError naming the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({error.reason}); a vocabulary file holds one UTF-8 "
                        "token per line") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the vocabulary file ({error.strerror or error}); give a file of one "
                        "token per line, [PAD] and [UNK] first") from None
    tokens = tuple(text.splitlines())
    check_vocabulary(tokens, str(path))
    return tokens


def check_vocabulary(tokens: Sequence[str], origin: str) -> None:
    """Refuse (DataError naming `origin` and the 1-based line) a vocabulary that is empty, does not start with
    [PAD] and [UNK], or holds an empty, space-holding or repeated token."""
    fix = "a vocabulary file holds one token per line, [PAD] on line 1 and [UNK] on line 2, each token once"
    if not tokens:
        raise DataError(f"{origin}: empty vocabulary; {fix}")
    for line, reserved in enumerate(RESERVED_TOKENS, start=1):
        found = tokens[line - 1] if line <= len(tokens) else None
        if found != reserved:
            shown = "nothing" if found is None else repr(found)
            raise DataError(f"{origin}:{line}: expected {reserved}, found {shown}; {fix}")
    first_line: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if not token or token != token.strip() or any(c.isspace() for c in token):
            raise DataError(f"{origin}:{line}: token {token!r} is empty or holds whitespace; {fix}")
        if token in first_line:
            raise DataError(f"{origin}:{line}: token {token!r} repeats line {first_line[token]}; {fix}")
        first_line[token] = line


def encode(vocabulary: Sequence[str], texts: Iterable[str]) -> list[list[int]]:
    """Each text as WordPiece ids of `vocabulary` (ids = positions), unpadded: BERT splitting, then each word
    split greedily into the longest pieces of the vocabulary; a word with no split is one [UNK] (id 1)."""
    check_vocabulary(vocabulary, "the subword vocabulary")
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece({token: index for index, token in enumerate(vocabulary)},
                                    unk_token=RESERVED_TOKENS[UNK_ID], continuing_subword_prefix=PREFIX,
                                    max_input_chars_per_word=MAX_WORD_CHARS))
    _split_as_bert(tokenizer)
    return [encoding.ids for encoding in tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)]


def vocabulary_sha256(vocabulary: Sequence[str]) -> str:
    """The sha256 of the vocabulary as a file of one token per line (for cache keys and provenance)."""
    return hashlib.sha256("".join(f"{token}\n" for token in vocabulary).encode("utf-8")).hexdigest()


def _train(texts: Sequence[str], special_tokens: Sequence[str], vocab_size: int) -> tuple[str, ...]:
    """The tokens, in id order, of a WordPieceTrainer run over `texts`; `special_tokens` take the first ids."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.trainers import WordPieceTrainer

    tokenizer = Tokenizer(WordPiece(unk_token=RESERVED_TOKENS[UNK_ID], max_input_chars_per_word=MAX_WORD_CHARS))
    _split_as_bert(tokenizer)
    trainer = WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens), show_progress=False,
                               continuing_subword_prefix=PREFIX)
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    ids = tokenizer.get_vocab(with_added_tokens=False)
    return tuple(sorted(ids, key=ids.__getitem__))


def _split_as_bert(tokenizer: object) -> None:
    """BertTokenizer(lower_case=True)'s basic splitting: clean, CJK-spaced, lower-cased, accents stripped, then
    words split at whitespace and punctuation."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    tokenizer.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                          lowercase=True)
    tokenizer.pre_tokenizer = BertPreTokenizer()


def _key(texts: Sequence[str], vocab_size: int) -> str:
    """The cache key: sha256 of the tokenizers version, this module's code, the settings and every text."""
    import tokenizers

    digest = hashlib.sha256(f"tokenizers-{tokenizers.__version__}|{vocab_size}|{RESERVED_TOKENS}|".encode())
    digest.update(Path(__file__).read_bytes())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _cached_problem(path: Path) -> str | None:
    """None when the cached vocabulary `path` matches its recorded sha256 and reads as a vocabulary; else why not."""
    if not path.is_file():
        return "missing"
    recorded = cache.recorded_sha256(path)
    if recorded is None or cache.sha256_file(path) != recorded:
        return "does not match its recorded sha256 (corrupt or truncated)"
    try:
        read_vocabulary(path)
    except DataError as error:
        return f"is not a vocabulary ({error})"
    return None
