"""Cross-checks of Ember's deployment files (run by Ops/deploy/check).

Schema validation says each manifest is well-formed; these checks say the files agree
with each other and with Config/ember.yaml: the ConfigMap only sets real settings, the
grace period covers the drain, probes and the ServiceMonitor hit the metrics port,
KEDA scales the right Deployment on the right group and topic, up to the partition
count, and the alert rules and dashboard are well-formed.
"""
import json
import re
import sys

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def flatten(tree, prefix=""):
    keys = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            keys.update(flatten(value, name + "."))
        else:
            keys[name] = value
    return keys


k8s = "Ops/deploy/k8s/"
docs = {}
for name in ["namespace", "configmap", "secret", "deployment", "service", "pdb", "keda", "servicemonitor"]:
    for doc in load_all(k8s + name + ".yaml"):
        docs[doc["kind"]] = doc
kustomization = yaml.safe_load(open(k8s + "kustomization.yaml"))
check(sorted(kustomization["resources"]) == sorted(n + ".yaml" for n in
      ["namespace", "configmap", "secret", "deployment", "service", "pdb", "keda", "servicemonitor"]),
      "kustomization.yaml lists every manifest")

defaults = flatten(yaml.safe_load(open("Config/ember.yaml")))
config = flatten(yaml.safe_load(docs["ConfigMap"]["data"]["ember.yaml"]))
unknown = sorted(set(config) - set(defaults))
check(not unknown, f"ConfigMap ember.yaml sets keys that are no settings: {unknown}")
setting = lambda key: config.get(key, defaults[key])

deployment = docs["Deployment"]
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
check(deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), "Deployment selector matches its pods")
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
check(ports.get("metrics") == setting("metrics.prometheus_port"), "container port 'metrics' = metrics.prometheus_port")
for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
    get = container[probe]["httpGet"]
    check(get["path"] == path and get["port"] == "metrics", f"{probe} GETs {path} on the metrics port")
pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
drain = setting("pipeline.drain_timeout_s")
flush = 10  # producer flush at shutdown (WorkerSetup.runPipeline)
check(pod["terminationGracePeriodSeconds"] > drain + flush + pre_stop,
      f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} > drain {drain} + flush {flush} + preStop {pre_stop}")
check(container["args"][:3] == ["run", "--config", "/etc/ember/ember.yaml"], "the container runs ember run with the mounted file")
check(any(m["mountPath"] == "/etc/ember" for m in container["volumeMounts"]), "the ConfigMap is mounted at /etc/ember")
check(pod["securityContext"]["runAsNonRoot"] is True, "pods run as non-root")
check(container["securityContext"]["readOnlyRootFilesystem"] is True, "read-only root filesystem")
secret = docs["Secret"]
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
for env in container.get("env", []):
    ref = env.get("valueFrom", {}).get("secretKeyRef")
    if ref:
        check(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys, f"env {env['name']} refers to an existing Secret key")
resources = container["resources"]
check("memory" in resources["limits"] and "cpu" in resources["requests"], "requests and a memory limit are set")

service = docs["Service"]
check(service["spec"]["selector"].items() <= pod_labels.items(), "Service selects the pods")
check(any(p["name"] == "metrics" and p["targetPort"] == "metrics" for p in service["spec"]["ports"]), "Service exposes the metrics port")
monitor = docs["ServiceMonitor"]
check(monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items(), "ServiceMonitor selects the Service")
check(monitor["spec"]["endpoints"][0]["port"] == "metrics" and monitor["spec"]["endpoints"][0]["path"] == "/metrics", "ServiceMonitor scrapes /metrics")
pdb = docs["PodDisruptionBudget"]
check(pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), "PDB selects the pods")

scaled = docs["ScaledObject"]
check(scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "ScaledObject scales the Deployment")
check(scaled["spec"]["maxReplicaCount"] == defaults["topics.create_partitions"],
      "maxReplicaCount = the input's partition count (topics.create_partitions)")
check(1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"], "1 <= minReplicaCount <= maxReplicaCount")
trigger = scaled["spec"]["triggers"][0]
check(trigger["type"] == "kafka", "the trigger is KEDA's Kafka scaler")
meta = trigger["metadata"]
check(meta["consumerGroup"] == setting("kafka.group_id"), "the trigger watches kafka.group_id")
check(meta["topic"] == setting("topics.input"), "the trigger watches topics.input")
check(meta["bootstrapServers"] == setting("kafka.brokers"), "the trigger uses kafka.brokers")
check(int(meta["lagThreshold"]) > 0, "lagThreshold is positive")
auth = docs["TriggerAuthentication"]
check(trigger["authenticationRef"]["name"] == auth["metadata"]["name"], "the trigger uses the TriggerAuthentication")
for ref in auth["spec"]["secretTargetRef"]:
    check(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys, f"TriggerAuthentication {ref['parameter']} refers to an existing Secret key")
for doc in docs.values():
    if doc["kind"] != "Namespace":
        check(doc["metadata"].get("namespace") == docs["Namespace"]["metadata"]["name"], f"{doc['kind']} is in the ember namespace")

rules = yaml.safe_load(open("Ops/deploy/prometheus/ember-alerts.yaml"))
alerts = [r for g in rules["groups"] for r in g["rules"]]
check(len(alerts) >= 4, "at least the lag, dead-letter, no-progress and restart alerts")
for rule in alerts:
    check(re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule.get("alert", "")) is not None, f"alert name {rule.get('alert')}")
    check(rule.get("expr", "").count("(") == rule.get("expr", "").count(")"), f"{rule.get('alert')}: balanced parentheses")
    check("ember_" in rule.get("expr", ""), f"{rule.get('alert')}: uses Ember's metrics")
    check(rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{rule.get('alert')}: severity")
    check(rule.get("annotations", {}).get("summary") and rule["annotations"].get("runbook", "").startswith("README.md#"), f"{rule.get('alert')}: summary and runbook")
    if "for" in rule:
        check(re.fullmatch(r"\d+[smh]", rule["for"]) is not None, f"{rule.get('alert')}: for duration")
readme = open("README.md").read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme, re.M)}
for rule in alerts:
    anchor = rule["annotations"]["runbook"].split("#", 1)[1]
    check(anchor in anchors, f"{rule['alert']}: runbook anchor #{anchor} is a README heading")

dashboard = json.load(open("Ops/deploy/grafana/ember-dashboard.json"))
check(len(dashboard["panels"]) >= 8, "dashboard has its panels")
ids = [p["id"] for p in dashboard["panels"]]
check(len(ids) == len(set(ids)), "panel ids are unique")
for panel in dashboard["panels"]:
    check(panel.get("targets") and all("ember_" in t["expr"] and t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"]),
          f"panel {panel['title']}: PromQL over Ember's metrics")

if failures:
    for failure in failures:
        print(f"ember: deploy check failed: {failure}", file=sys.stderr)
    sys.exit(1)
print(f"ember: {len(docs)} manifests, {len(alerts)} alert rules and {len(dashboard['panels'])} dashboard panels agree with each other and Config/ember.yaml", file=sys.stderr)
