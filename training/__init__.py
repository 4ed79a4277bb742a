"""Fine-tuning the assistant's model: ``python -m training prepare | sft | evaluate | merge``."""
