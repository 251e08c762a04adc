"""A stand-in for `az account get-access-token --output json --resource R`, for the test suite.

Answers like the Azure CLI: {"accessToken", "expiresOn", "expires_on", "tokenType", ...}, with a
token shaped like an Entra ID JWT whose audience is R. Each call adds a line to DIR/calls.

usage (through an `az` wrapper script on PATH): fake_az.py DIR account get-access-token ...
"""

import base64
import json
import sys
import time


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def main():
    folder, args = sys.argv[1], sys.argv[2:]
    with open(f"{folder}/calls", "a") as calls:
        calls.write(" ".join(args) + "\n")
    if args[:2] != ["account", "get-access-token"] or "--resource" not in args:
        print("ERROR: unsupported arguments", file=sys.stderr)
        return 2
    resource = args[args.index("--resource") + 1]
    now = int(time.time())
    claims = {"aud": resource.rstrip("/"), "iss": "https://sts.windows.net/test/",
              "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "upn": "dev@contoso.com"}
    token = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"
    print(json.dumps({"accessToken": token, "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000"),
                      "expires_on": now + 3600, "subscription": "0", "tenant": "test",
                      "tokenType": "Bearer"}))
    return 0


sys.exit(main())
