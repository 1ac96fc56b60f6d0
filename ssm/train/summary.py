"""The model summary printed at the start of fit, without the FLOPs that Lightning reports as 0 when the module has
no `example_input_array` (counting them would run a forward pass, and torch's counter skips the FFTs and custom
kernels that are most of an SSM's work)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from lightning.pytorch.callbacks import ModelSummary, RichModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count


class Summary(RichModelSummary):
    """RichModelSummary that leaves out the FLOPs column and total when they were not measured (0)."""

    @staticmethod
    def summarize(summary_data: List[Tuple[str, List[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: Dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                       total_training_modes, total_flops, **summarize_kwargs)
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="right" if name in ("Params", "In sizes", "Out sizes") else "left")
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        def count(n: float) -> str:
            return get_human_readable_count(int(n)).strip()

        frozen = total_parameters - trainable_parameters
        console.print(f"Params: {count(trainable_parameters)} trainable, {count(frozen)} frozen, "
                      f"{count(total_parameters)} total ({get_formatted_model_size(model_size)} MB); modules: "
                      f"{total_training_modes['train']} in train mode, {total_training_modes['eval']} in eval mode")


def replace_default_summary(callbacks: List[Any]) -> None:
    """Swap Lightning's own ModelSummary/RichModelSummary (not a user's subclass) in `callbacks` for `Summary`."""
    for i, cb in enumerate(callbacks):
        if type(cb) in (ModelSummary, RichModelSummary):
            callbacks[i] = Summary(max_depth=getattr(cb, "_max_depth", 1), **getattr(cb, "_summarize_kwargs", {}))
