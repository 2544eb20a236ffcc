"""Delivery: one module per transport, each sending a whole job to a destination."""
