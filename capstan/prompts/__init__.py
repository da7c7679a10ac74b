"""Few-shot prompts as plain YAML files, one per LMP, loaded with `lmp.prompt.load_prompt(name)`."""

__all__: list[str] = []
