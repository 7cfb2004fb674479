"""Print CloudNativePG's admission webhook configurations (from its release manifest) pointed at
a manager running on this machine: each `clientConfig.service` becomes a URL on 127.0.0.1 and
carries the given CA. Usage: webhooks.py RELEASE_YAML CA_FILE PORT"""

import base64
import sys

import yaml

release, ca_file, port = sys.argv[1], sys.argv[2], sys.argv[3]
ca = base64.b64encode(open(ca_file, "rb").read()).decode()
out = []
for doc in yaml.safe_load_all(open(release, encoding="utf-8")):
    if doc and doc.get("kind") in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
        out.append(doc)
print(yaml.safe_dump_all(out), end="")
