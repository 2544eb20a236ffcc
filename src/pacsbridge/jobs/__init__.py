"""Durable jobs: the store, the intake that fills it, and the workers that empty it.

From the moment intake commits a job, the job is the gateway's: its files are in
the data folder, its objects' UIDs are fixed, and each destination's delivery is
a row that a worker claims, sends and records, object by object.
"""
