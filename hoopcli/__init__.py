"""hoopcli: a guard in the data path of AI agents that run the AWS CLI."""

__version__ = "0.1.0"
