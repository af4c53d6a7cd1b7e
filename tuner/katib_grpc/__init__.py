"""Katib's gRPC APIs, the optional ``grpc`` extra: the DB-manager that tuner serves
(:mod:`tuner.katib_grpc.dbmanager`), Katib Suggestion services that tuner calls
(:mod:`tuner.katib_grpc.remote`) and tuner's own algorithms served as one
(:mod:`tuner.katib_grpc.suggestion_service`).

Nothing here is imported unless a gRPC feature is used; :mod:`tuner.katib_grpc.protos` loads
the messages from the ``.proto`` file at run time.
"""
