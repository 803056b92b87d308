"""The data layer: sources, the data contract, and splits."""

from shipyard.data.contract import ColumnContract, Contract, ValidationReport, infer_contract
from shipyard.data.sources import fingerprint, read_table
from shipyard.data.split import Split, split_frame

__all__ = [
    "ColumnContract",
    "Contract",
    "Split",
    "ValidationReport",
    "fingerprint",
    "infer_contract",
    "read_table",
    "split_frame",
]
