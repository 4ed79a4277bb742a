"""Conversation review for designers, retention and erasure, over Rasa's SQL tracker store.

    python -m review list --since 7d            conversations that need attention, newest first
    python -m review show SENDER                one conversation's transcript
    python -m review report --output r.html     the list and the transcripts as one HTML page
    python -m review export-nlu --output x.yml  the chosen user messages as NLU examples to correct
    python -m review export-story SENDER        the conversation as a Rasa test story
    python -m review prune --older-than 90      retention: delete conversations idle that long
    python -m review forget --sender ID         erasure: everything held about one visitor
    python -m review feedback --output v.yml    visitors' thumbs-down on LLM replies, for better replies
    python -m review export-preferences --input v.yml --output pairs.jsonl
                                                the better replies as preference pairs (training prepare/dpo)

Personal data is masked in everything it prints or writes (``ridgeline.privacy``) unless
``--unmasked --token $RASA_AUTH_TOKEN`` is given. docs/review.md is the designers' guide,
docs/operations.md the retention and erasure runbook.
"""
