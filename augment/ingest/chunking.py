"""Token-aware chunking that keeps every chunk's character range in its document.

semantic-text-splitter packs the largest semantic units that fit (sections and paragraphs, then
sentences, then words), so chunks end on paragraph or sentence boundaries whenever one fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from augment.tokens import Tokenizer
from augment.types import Chunk, Document

MARKDOWN_SUFFIXES = (".md", ".markdown")


class Chunker:
    def __init__(self, tokenizer: Tokenizer, chunk_tokens: int, overlap: int):
        self.tokenizer = tokenizer
        self._text = tokenizer.splitter(chunk_tokens, overlap)
        self._markdown = tokenizer.splitter(chunk_tokens, overlap, markdown=True)

    def chunk(self, doc: Document) -> list[Chunk]:
        splitter = self._markdown if doc.path.lower().endswith(MARKDOWN_SUFFIXES) else self._text
        chunks = []
        for i, (start, text) in enumerate(splitter.chunk_indices(doc.text)):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}:{i:04d}",
                    doc_id=doc.doc_id,
                    index=i,
                    start=start,
                    end=start + len(text),
                    text=text,
                    title=doc.title,
                    tokens=self.tokenizer.count(text),
                )
            )
        return chunks

    def chunk_all(self, docs: Iterable[Document]) -> Iterator[Chunk]:
        for doc in docs:
            yield from self.chunk(doc)
