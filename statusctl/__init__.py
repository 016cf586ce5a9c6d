"""statusctl: push order status labels to shopping carts through a reliable outbox."""

__version__ = "0.1.0"
