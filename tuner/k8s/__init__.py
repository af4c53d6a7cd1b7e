"""Kubernetes plumbing, apart from what a Job means to a trial.

Pure modules (no ``kubernetes`` import, unit-testable without the client):

* :mod:`tuner.k8s.gjson`: the GJSON subset of Katib's success and failure conditions;
* :mod:`tuner.k8s.jobs`: Job names, labels, manifest, ownerReference and outcome;
* :mod:`tuner.k8s.trial_objects`: the manifest of a trial of any kind, and which pods are its.
* :mod:`tuner.k8s.ratelimit`: the token bucket of requests toward the apiserver.

Modules that use the ``kubernetes`` client (with :mod:`tuner.runners.kubernetes` and
:mod:`tuner.operator`, the only ones allowed to):

* :mod:`tuner.k8s.client`: the client configuration and the retrying calls (temporary errors
  retried with backoff, permanent ones raised);
* :mod:`tuner.k8s.streams`: streaming responses read line by line in daemon threads;
* :mod:`tuner.k8s.watching`: the one list-then-watch loop;
* :mod:`tuner.k8s.informer`: shared informers (one watch per namespace and resource, a cache);
* :mod:`tuner.k8s.discovery`: a kind's resource (plural) from API discovery, cached;
* :mod:`tuner.k8s.object_calls`: create/get/list/delete calls of any resource.

This package imports none of its modules, so importing a pure one never loads the client.
"""
