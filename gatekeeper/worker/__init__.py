"""The worker: runs ``build:JOB`` Gearman jobs on nodes, as devstack-gate did.

Modules: ``buildargs`` (validate the job's arguments), ``nodes`` (static node
claimer), ``workspace`` (clone the projects at the speculative refs), ``ssh``
(commands and rsync to the node), ``logs`` (collect and publish),
``executor`` (one build, start to end), ``service`` (the Gearman worker),
``wiring`` (from the service config), ``standin`` (a stand-in devstack) and
``jobs/`` (job scripts shipped to every workspace)."""
