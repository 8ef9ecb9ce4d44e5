"""augment: learning by thinking.

Read a folder of documents, have a language model think about each chunk (question-answer pairs,
paraphrases, inferences, study notes), and write training-ready shards.
"""

__version__ = "0.1.0"
