#!/usr/bin/env python3
"""hookgate interop driver: the providers' own libraries sign, the gateway must agree.

    drive.py config DIR   pick loopback ports, make keys, write DIR/gateway.yaml and DIR/state.json
    drive.py ready DIR    exit 0 when the gateway's /readyz answers 200
    drive.py run DIR      the checks, one line each, then the /metrics check and a summary

For every provider in PROVIDERS: a realistic body signed by the library is forwarded (200, the
echo upstream returns the body byte for byte); the same request with one body byte changed is
refused (403 invalid_signature, Discord 401); where the scheme has a timestamp, a correctly signed
but stale request is refused (403 expired). A provider whose library is not installed is skipped.
"""

import base64
import hashlib
import hmac
import http.client
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import types
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional
from urllib.parse import urlencode

NODE_DIR = os.environ.get("HOOKGATE_INTEROP_NODE", "/tmp/hookgate-interop-node")
PUBLIC = "https://hooks.example.com"


def tok(n: int = 16) -> str:
    return secrets.token_hex(n)


def hmac_key(secret: str):
    """A shared-secret route: the gateway and the signer hold the same string."""
    return {"secret": secret}, secret


# ---------------------------------------------------------------- signers, one per library

def sign_stripe(key, url, body, now):
    import stripe
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), key, timestamp=int(now))
    return {"Stripe-Signature": header}


def verify_stripe(key, url, headers, body):
    import stripe
    return stripe.WebhookSignature.verify_header(body, headers["Stripe-Signature"], key, tolerance=300)


def standard_webhooks_signer(module, prefix):
    def sign(key, url, body, now):
        webhook = __import__(module, fromlist=["Webhook"]).Webhook(key)
        msg_id = "msg_" + tok(12)
        stamp = datetime.fromtimestamp(int(now), tz=timezone.utc)
        return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(int(now)),
                f"{prefix}-signature": webhook.sign(msg_id, stamp, body.decode())}

    def verify(key, url, headers, body):
        __import__(module, fromlist=["Webhook"]).Webhook(key).verify(body, headers)
        return True
    return sign, verify


sign_svix, verify_svix = standard_webhooks_signer("svix.webhooks", "svix")
sign_stdwh, verify_stdwh = standard_webhooks_signer("standardwebhooks.webhooks", "webhook")


def sign_slack(key, url, body, now):
    from slack_sdk.signature import SignatureVerifier
    stamp = str(int(now))
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(key).generate_signature(timestamp=stamp, body=body)}


def verify_slack(key, url, headers, body):
    from slack_sdk.signature import SignatureVerifier
    return SignatureVerifier(key).is_valid_request(body, headers)


def form_params(body: bytes) -> dict:
    from urllib.parse import parse_qs
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


def sign_twilio(key, url, body, now, algorithm=None):
    from twilio.request_validator import RequestValidator
    params = {} if "bodySHA256=" in url else form_params(body)
    return {"X-Twilio-Signature": RequestValidator(key).compute_signature(url, params, algorithm)}


def verify_twilio(key, url, headers, body, algorithm=None):
    from twilio.request_validator import RequestValidator
    params = body.decode() if "bodySHA256=" in url else form_params(body)
    return RequestValidator(key).validate(url, params, headers["X-Twilio-Signature"], algorithm)


SHARED_KEY_SETTINGS = "key=webhooks_sharedkey_ab12cd34ef56ab12cd34ef56ab12cd34,algorithm=HMAC_SHA256"


def sign_twilio_shared(key, url, body, now):
    return {"X-Twilio-Webhooks-Signature-Settings": SHARED_KEY_SETTINGS,
            **sign_twilio(key, url, body, now, "HMAC_SHA256")}


def verify_twilio_shared(key, url, headers, body):
    from twilio.request_validator import get_signature_algorithm
    algorithm = get_signature_algorithm(headers["X-Twilio-Webhooks-Signature-Settings"])
    return verify_twilio(key, url, headers, body, algorithm)


def twilio_json_query(body: bytes) -> str:
    """Twilio signs non-form bodies by adding their SHA-256 to the URL it calls."""
    from twilio.request_validator import RequestValidator
    return "?bodySHA256=" + RequestValidator("unused").compute_hash(body.decode())


def sign_square(key, url, body, now):
    # squareup only verifies; Square's documented recipe signs, and the SDK must agree (below).
    mac = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return {"x-square-hmacsha256-signature": base64.b64encode(mac).decode()}


def verify_square(key, url, headers, body):
    from square.utils.webhooks_helper import verify_signature
    return verify_signature(request_body=body.decode(), signature_header=headers["x-square-hmacsha256-signature"],
                            signature_key=key, notification_url=url)


# HubSpot signs the URI with these escapes decoded (and no others); its SDK leaves that to callers.
HUBSPOT_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                  "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def hubspot_uri(url: str) -> str:
    return re.sub(r"%[0-9A-Fa-f]{2}", lambda m: HUBSPOT_DECODE.get(m.group(0).upper(), m.group(0)), url)


def sign_hubspot(key, url, body, now):
    from hubspot.utils.signature import Signature
    stamp = str(int(now * 1000))
    sig = Signature.get_signature(key, body.decode(), "v3", http_uri=hubspot_uri(url), http_method="POST",
                                  timestamp=stamp)
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": stamp}


def verify_hubspot(key, url, headers, body):
    from hubspot.utils.signature import Signature
    return Signature.is_valid(headers["X-HubSpot-Signature-v3"], key, body.decode(), http_uri=hubspot_uri(url),
                              http_method="POST", signature_version="v3",
                              timestamp=headers["X-HubSpot-Request-Timestamp"])


def sign_paddle(key, url, body, now):
    from paddle_billing.Notifications.PaddleSignature import PaddleSignature
    ts = int(now)
    h1 = PaddleSignature.calculate_hmac(key, f"{ts}:".encode() + body).hexdigest()
    return {"Paddle-Signature": f"ts={ts};h1={h1}"}


def verify_paddle(key, url, headers, body):
    from paddle_billing.Notifications import Secret, Verifier
    return Verifier().verify(types.SimpleNamespace(headers=headers, body=body), Secret(key))


def sign_barker(key, url, body, now):
    """barker 0.1's Webhook, with hmac.new's old MD5 default (barker passes no digestmod, which
    Python 3.8 made an error) and the clock it reads set to `now`."""
    import barker
    barker.hmac = types.SimpleNamespace(
        new=lambda k, msg=None, digestmod=hashlib.md5: hmac.new(k, msg, digestmod),
        compare_digest=hmac.compare_digest)
    barker.time = types.SimpleNamespace(time=lambda: now)
    webhook = barker.Webhook(url="unused", data=body.decode(), key=key)
    webhook._calculate_hash()  # what Webhook.send() does before it posts
    return dict(webhook.headers)


def verify_barker(key, url, headers, body):
    import barker
    webhook = barker.Webhook(data=body.decode(), key=key)
    webhook.headers = dict(headers)
    return webhook.verify_hash()


def discord_key():
    from nacl.signing import SigningKey
    signing = SigningKey.generate()
    return {"public_key": signing.verify_key.encode().hex()}, signing.encode().hex()


def sign_discord(key, url, body, now):
    from nacl.signing import SigningKey
    stamp = str(int(now))
    signature = SigningKey(bytes.fromhex(key)).sign(stamp.encode() + body).signature
    return {"X-Signature-Ed25519": signature.hex(), "X-Signature-Timestamp": stamp}


def verify_discord(key, url, headers, body):
    from discord_interactions import verify_key
    from nacl.signing import SigningKey
    public = SigningKey(bytes.fromhex(key)).verify_key.encode().hex()
    return verify_key(body, headers["X-Signature-Ed25519"], headers["X-Signature-Timestamp"], public)


def sendgrid_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return {"public_key": base64.b64encode(der).decode()}, pem.decode()


def sign_sendgrid(key, url, body, now):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    stamp = str(int(now))
    private = serialization.load_pem_private_key(key.encode(), None)
    der = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(der).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


def verify_sendgrid(key, url, headers, body):
    from cryptography.hazmat.primitives import serialization
    from sendgrid.helpers.eventwebhook import EventWebhook
    private = serialization.load_pem_private_key(key.encode(), None)
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return EventWebhook(base64.b64encode(der).decode()).verify_signature(
        body.decode(), headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"])


def sign_freshbooks(key, url, body, now):
    # FreshBooks' documented code: HMAC-SHA256 over json.dumps of Flask's request.form.
    import flask
    app = flask.Flask("freshbooks")
    with app.test_request_context("/", method="POST", data=body,
                                  content_type="application/x-www-form-urlencoded"):
        message = json.dumps(dict(flask.request.form))
    mac = hmac.new(key.encode("utf-8"), msg=message.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return {"X-FreshBooks-Hmac-SHA256": base64.b64encode(mac).decode()}


def node(script: str, **args) -> dict:
    """Runs an ES module in NODE_DIR with `args` as JSON on stdin; it prints a JSON object."""
    prelude = "import { readFileSync } from 'node:fs'; const args = JSON.parse(readFileSync(0, 'utf8'));\n"
    done = subprocess.run(["node", "--input-type=module", "-e", prelude + script], input=json.dumps(args),
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"node: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def sign_github(key, url, body, now):
    return node("""
import { sign, verify } from '@octokit/webhooks-methods';
const signature = await sign(args.key, args.body);
if (!(await verify(args.key, args.body, signature))) throw new Error('verify() refuses sign()');
console.log(JSON.stringify({ 'X-Hub-Signature-256': signature }));
""", key=key, body=body.decode())


def sign_linear(key, url, body, now):
    # @linear/sdk only verifies: sign as Linear documents, and have the SDK check it when fresh.
    return node("""
import crypto from 'node:crypto';
import { LinearWebhookClient } from '@linear/sdk/webhooks';
const signature = crypto.createHmac('sha256', args.key).update(args.body).digest('hex');
if (args.fresh) new LinearWebhookClient(args.key).verify(Buffer.from(args.body), signature);
console.log(JSON.stringify({ 'Linear-Signature': signature, 'Linear-Event': 'Issue' }));
""", key=key, body=body.decode(), fresh=abs(time.time() - now) < 30)


def sign_shopify(key, url, body, now):
    return node("""
import { getHmac } from '@shopify/shopify-api/test-helpers';
console.log(JSON.stringify({ 'X-Shopify-Hmac-Sha256': getHmac(args.body, args.key) }));
""", key=key, body=body.decode())


# ---------------------------------------------------------------- realistic bodies

def js(obj, **kw) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), **kw).encode()


def stripe_body(now):  # Stripe sends pretty-printed JSON
    return json.dumps({
        "id": "evt_1PZkq2LkdIwHu7ixbW7LJ0Ab", "object": "event", "api_version": "2024-06-20",
        "created": int(now), "type": "customer.created", "livemode": False, "pending_webhooks": 1,
        "data": {"object": {"id": "cus_QQk7dJmb1PdnXy", "object": "customer", "name": "Zoë Ünal",
                            "email": "zoe@example.com", "description": "café ☕ customer", "balance": 0}},
        "request": {"id": "req_8bWD4bJ3Ua0xQw", "idempotency_key": str(uuid.uuid4())}},
        indent=2, ensure_ascii=False).encode()


def invoice_body(now):
    return js({"type": "invoice.paid", "timestamp": datetime.fromtimestamp(int(now), timezone.utc).isoformat(),
               "data": {"id": "inv_2Zr8Q", "customer": "Åsa Öberg", "amount": 4200, "currency": "EUR"}})


SLACK_COMMAND = urlencode({
    "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0001", "team_domain": "example",
    "enterprise_id": "E0001", "enterprise_name": "Globular Construct Inc", "channel_id": "C2147483705",
    "channel_name": "test", "user_id": "U2147483697", "user_name": "Steve", "command": "/weather",
    "text": "94070 & Zürich +2°", "response_url": "https://hooks.slack.com/commands/1234/5678",
    "trigger_id": "13345224609.738474920.8088930838d88f008e0", "api_app_id": "A123456"}).encode()

SLACK_CHALLENGE = js({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                      "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                      "type": "url_verification"})

TWILIO_SMS = urlencode({
    "ToCountry": "US", "ToState": "CA", "SmsMessageSid": "SM" + "1" * 32, "NumMedia": "0", "ToCity": "",
    "FromZip": "94105", "SmsSid": "SM" + "1" * 32, "FromState": "CA", "SmsStatus": "received",
    "FromCity": "SAN FRANCISCO", "Body": "Hi! Café at 5? 👍 a+b=c & 100%", "FromCountry": "US",
    "To": "+14155550100", "ToZip": "", "NumSegments": "1", "MessageSid": "SM" + "1" * 32,
    "AccountSid": "AC" + "2" * 32, "From": "+14155550111", "ApiVersion": "2010-04-01"}).encode()

TWILIO_JSON = js({"event_type": "com.twilio.messaging.message.delivered", "data": {
    "messageSid": "SM" + "3" * 32, "to": "+14155550100", "status": "delivered", "body": "Grüße"}})

TWILIO_STATUS = urlencode({"MessageSid": "SM" + "4" * 32, "MessageStatus": "delivered",
                           "AccountSid": "AC" + "2" * 32, "To": "+14155550100", "From": "+14155550111",
                           "ApiVersion": "2010-04-01"}).encode()

SQUARE = js({"merchant_id": "6SSW7HV8K2ST5", "type": "payment.updated", "event_id": str(uuid.uuid4()),
             "created_at": "2024-06-10T06:13:20.123Z", "data": {"type": "payment", "id": "KkAkhdMs",
             "object": {"payment": {"id": "KkAkhdMs", "amount_money": {"amount": 1500, "currency": "USD"},
                                    "status": "COMPLETED", "note": "Crème brûlée ×2"}}}})


def hubspot_body(now):
    return js([{"eventId": 1779262817, "subscriptionId": 2881778, "portalId": 62515, "appId": 1160452,
                "occurredAt": int(now * 1000), "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0, "objectId": 1246965, "propertyName": "firstname",
                "propertyValue": "Zoë", "changeSource": "CRM"}])


def paddle_body(now):
    return js({"event_id": "evt_01hv8x2acma1c8z9kp3bj5ntcn", "event_type": "transaction.completed",
               "occurred_at": datetime.fromtimestamp(int(now), timezone.utc).isoformat(),
               "notification_id": "ntf_01hv8x2af2bks8z9m0ypmcyqkq",
               "data": {"id": "txn_01hv8wptq8987qeep44cyrewp9", "status": "completed", "currency_code": "GBP",
                        "custom_data": {"note": "ß & ü"}}})


BARKER = b'{"event": "deploy", "service": "api", "status": "ok", "build": 1289}'

DISCORD = js({"app_permissions": "442368", "application_id": "1161297346029879296", "type": 2, "version": 1,
              "channel_id": "1161297597646884910", "guild_id": "1161297597646884904",
              "id": "1161299134355333170", "token": "aW50ZXJhY3Rpb246MTE2MTI5OTEzNDM1NTMzMzE3MA",
              "data": {"id": "1161298522326147132", "name": "echo", "type": 1,
                       "options": [{"name": "text", "type": 3, "value": "héllo 👋"}]},
              "member": {"user": {"id": "53908232506183680", "username": "mason", "global_name": "Mason"}}})

SENDGRID = (js([{"email": "example@test.com", "timestamp": 1513299569, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
                 "event": "processed", "category": "cat facts", "sg_event_id": "sg_event_id",
                 "sg_message_id": "sg_message_id"},
                {"email": "jørgen@example.com", "timestamp": 1513299570, "event": "open",
                 "useragent": "Mozilla/5.0", "ip": "255.255.255.255", "sg_event_id": "sg_event_id_2"}])
            + b"\r\n")

FRESHBOOKS = (b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234"
              b"&system=https%3A%2F%2Fmy.freshbooks.com&user_id=1")

GITHUB = js({"zen": "Keep it logically awesome.", "hook_id": 482938, "action": "opened",
             "issue": {"number": 1347, "title": "Spelling error in the README file — “colour”", "state": "open"},
             "repository": {"id": 1296269, "full_name": "octocat/Hello-World"}, "sender": {"login": "octocat"}})


def linear_body(now):
    return js({"action": "create", "type": "Issue", "createdAt": "2024-06-10T06:13:20.123Z",
               "organizationId": str(uuid.uuid4()), "url": "https://linear.app/acme/issue/ENG-42",
               "data": {"id": str(uuid.uuid4()), "identifier": "ENG-42", "title": "Crash on Zoë's device",
                        "priority": 2}, "webhookTimestamp": int(now * 1000), "webhookId": str(uuid.uuid4())})


SHOPIFY = js({"id": 820982911946154508, "email": "jon@example.com", "name": "#9999", "currency": "CAD",
              "total_price": "403.00", "customer": {"first_name": "Jöns", "last_name": "Jacobsson"},
              "line_items": [{"title": "Aviator sunglasses", "quantity": 1, "price": "199.00"}]})


# ---------------------------------------------------------------- the table

@dataclass
class Provider:
    route: str                     # route name; the request path is /hooks/<route>
    scheme: str
    libs: list                     # Python distributions, or "npm:<package>", in label order
    label: str                     # "{0}", "{1}" name the libs with their versions
    body: Callable                 # now -> bytes
    sign: Callable                 # (key, signed_url, body, now) -> headers
    verify: Optional[Callable] = None   # the library's own verifier, as a check on the driver
    keygen: Callable = lambda: hmac_key(tok())
    content_type: Optional[str] = "application/json"
    extra_headers: dict = field(default_factory=dict)
    stale: Optional[int] = None    # age in seconds of the stale request; None: no timestamp
    refused: int = 403             # status for a tampered body
    route_extra: dict = field(default_factory=dict)
    query: Callable = lambda body: ""
    answer: Optional[Callable] = None   # endpoint check answered by the gateway: body -> expected JSON


def const(body):
    return lambda now: body


FORM = "application/x-www-form-urlencoded"

PROVIDERS = [
    Provider("stripe", "stripe", ["stripe"], "signed by {0}", stripe_body, sign_stripe, verify_stripe,
             keygen=lambda: hmac_key("whsec_" + tok(16)), stale=600),
    Provider("svix", "svix", ["svix"], "signed by {0}", invoice_body, sign_svix, verify_svix,
             keygen=lambda: hmac_key("whsec_" + base64.b64encode(os.urandom(24)).decode()), stale=600),
    Provider("standard-webhooks", "standard-webhooks", ["standardwebhooks"], "signed by {0}", invoice_body,
             sign_stdwh, verify_stdwh,
             keygen=lambda: hmac_key("whsec_" + base64.b64encode(os.urandom(32)).decode()), stale=600),
    Provider("slack", "slack", ["slack_sdk"], "slash command signed by {0}", const(SLACK_COMMAND), sign_slack,
             verify_slack, content_type=FORM, stale=600),
    Provider("slack-challenge", "slack", ["slack_sdk"], "url_verification signed by {0}, answered by the gateway",
             const(SLACK_CHALLENGE), sign_slack, verify_slack, stale=600, route_extra={"challenge": "answer"},
             answer=lambda body: {"challenge": json.loads(body)["challenge"]}),
    Provider("twilio", "twilio", ["twilio"], "SMS form signed by {0}", const(TWILIO_SMS), sign_twilio,
             verify_twilio, content_type=FORM, keygen=lambda: hmac_key(tok(16)),
             route_extra={"public_url": PUBLIC}, query=lambda body: "?tenant=acme&lang=de%2DCH"),
    Provider("twilio-json", "twilio", ["twilio"], "JSON body (bodySHA256) signed by {0}", const(TWILIO_JSON),
             sign_twilio, verify_twilio, route_extra={"public_url": PUBLIC}, query=twilio_json_query),
    Provider("twilio-sharedkey", "twilio", ["twilio"], "SharedKey HMAC-SHA256 signed by {0}",
             const(TWILIO_STATUS), sign_twilio_shared, verify_twilio_shared, content_type=FORM,
             route_extra={"public_url": PUBLIC + ":8443/twilio/status"}),
    Provider("square", "square", ["squareup"], "signed per Square's recipe, verified by {0}", const(SQUARE),
             sign_square, verify_square, keygen=lambda: hmac_key(base64.urlsafe_b64encode(os.urandom(16)).decode()),
             route_extra={"public_url": PUBLIC + "/square/webhook"}),
    Provider("hubspot", "hubspot", ["hubspot-api-client"], "v3 signed by {0}", hubspot_body, sign_hubspot,
             verify_hubspot, keygen=lambda: hmac_key(str(uuid.uuid4())), stale=600,
             route_extra={"public_url": PUBLIC}, query=lambda body: "?portal=62515&source=crm%3Acontacts"),
    Provider("paddle", "paddle", ["paddle-python-sdk"], "signed by {0}", paddle_body, sign_paddle, verify_paddle,
             keygen=lambda: hmac_key("pdl_ntfset_01hv8x2af2bks8z9m0ypmcyqkq_" + tok(16)), stale=60),
    Provider("barker", "barker", ["barker"], "signed by {0} (hmac's old MD5 default)", const(BARKER),
             sign_barker, verify_barker, content_type=None, stale=600),
    Provider("discord", "discord", ["PyNaCl", "discord-interactions"], "signed by {0}, verified by {1}",
             const(DISCORD), sign_discord, verify_discord, keygen=discord_key, refused=401),
    Provider("sendgrid", "sendgrid", ["cryptography", "sendgrid"], "ECDSA signed by {0}, verified by {1}",
             const(SENDGRID), sign_sendgrid, verify_sendgrid, keygen=sendgrid_key),
    Provider("freshbooks", "freshbooks", ["Flask", "Werkzeug"], "signed by FreshBooks' documented code on {0}, {1}",
             const(FRESHBOOKS), sign_freshbooks, content_type=FORM),
    Provider("github", "github", ["npm:@octokit/webhooks-methods"], "signed by {0}", const(GITHUB), sign_github,
             extra_headers={"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                            "User-Agent": "GitHub-Hookshot/a1b2c3d"}),
    Provider("linear", "linear", ["npm:@linear/sdk"], "signed per Linear's recipe, verified by {0}",
             linear_body, sign_linear, stale=120),
    Provider("shopify", "shopify", ["npm:@shopify/shopify-api"], "signed by {0} (test-helpers getHmac)",
             const(SHOPIFY), sign_shopify,
             extra_headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "acme.myshopify.com",
                            "X-Shopify-Api-Version": "2024-07", "X-Shopify-Webhook-Id": str(uuid.uuid4())}),
]


# ---------------------------------------------------------------- config

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yaml_lines(mapping: dict, indent: str = "") -> list:
    """Block YAML for nested dicts and lists of dicts; scalars as JSON (valid YAML flow scalars)."""
    lines = []
    for k, v in mapping.items():
        if isinstance(v, dict):
            lines += [f"{indent}{k}:"] + yaml_lines(v, indent + "  ")
        elif isinstance(v, list):
            lines.append(f"{indent}{k}:")
            for item in v:
                sub = yaml_lines(item, indent + "    ")
                lines += [indent + "  - " + sub[0].lstrip()] + sub[1:]
        else:
            lines.append(f"{indent}{k}: {json.dumps(v)}")
    return lines


def write_config(workdir: str) -> None:
    state = {"listen": free_port(), "admin": free_port(), "keys": {}}
    routes = []
    for p in PROVIDERS:
        verify_fields, private = p.keygen()
        state["keys"][p.route] = private
        routes.append({"name": p.route, "path": f"/hooks/{p.route}", "upstream": "echo", **p.route_extra,
                       "verify": {"scheme": p.scheme, **verify_fields}})
    config = {"listen": f"127.0.0.1:{state['listen']}", "admin_listen": f"127.0.0.1:{state['admin']}",
              "shutdown_timeout": "10s", "routes": routes}
    with open(os.path.join(workdir, "gateway.yaml"), "w") as f:
        f.write("# written by tests/interop/drive.py\n" + "\n".join(yaml_lines(config)) + "\n")
    with open(os.path.join(workdir, "state.json"), "w") as f:
        json.dump(state, f)


# ---------------------------------------------------------------- checks

def version(lib: str) -> Optional[str]:
    try:
        if lib.startswith("npm:"):
            with open(os.path.join(NODE_DIR, "node_modules", lib[4:], "package.json")) as f:
                return json.load(f)["version"]
        return importlib.metadata.version(lib)
    except (OSError, importlib.metadata.PackageNotFoundError):
        return None


def flip(body: bytes) -> bytes:
    """Changes the last letter or digit that is not inside a %XX escape (where case is no change)."""
    for i in range(len(body) - 1, -1, -1):
        c = chr(body[i])
        if c.isascii() and c.isalnum() and b"%" not in body[max(0, i - 2):i]:
            new = str((int(c) + 1) % 10) if c.isdigit() else c.swapcase()
            return body[:i] + new.encode() + body[i + 1:]
    raise ValueError("nothing to flip")


def request(port: int, method: str, target: str, headers: dict, body: bytes = b""):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Run:
    def __init__(self, state):
        self.state = state
        self.passed = self.failed = self.skipped = 0
        self.answered = {}  # (route, outcome) -> how many answers showed it

    def report(self, ok: bool, what: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f"\n       {detail}" if detail and not ok else ""),
              flush=True)

    def send(self, p: Provider, headers: dict, body: bytes, target: str):
        try:
            return request(self.state["listen"], "POST", target, headers, body)
        except OSError as e:  # reported as a failed check, and the run goes on
            return None, f"{type(e).__name__}: {e}".encode()

    def provider(self, p: Provider) -> None:
        versions = [version(lib) for lib in p.libs]
        if None in versions or (any(lib.startswith("npm:") for lib in p.libs) and not have_node()):
            missing = [lib for lib, v in zip(p.libs, versions) if v is None] or ["node"]
            print(f"skip {p.route}: {', '.join(missing)} not installed", flush=True)
            self.skipped += 1
            return
        names = [f"{lib.removeprefix('npm:')} {v}" for lib, v in zip(p.libs, versions)]
        key = self.state["keys"][p.route]
        now = time.time()
        body = p.body(now)
        query = p.query(body)
        target = f"/hooks/{p.route}{query}"
        public = p.route_extra.get("public_url")
        url = None
        if public:  # the URL the provider called, as README "Public URLs" rebuilds it
            has_path = "/" in public.split("://", 1)[1]
            url = public + query if has_path else public + target
        base = {**({"Content-Type": p.content_type} if p.content_type else {}), **p.extra_headers}

        def signed(at: float, b: bytes) -> dict:
            return {**base, **p.sign(key, url, b, at)}

        label = f"{p.route} {p.label.format(*names)}"
        try:
            headers = signed(now, body)
            if p.verify and not p.verify(key, url, headers, body):
                raise RuntimeError("the library's own verifier refuses it")
        except Exception as e:  # a driver problem, not a gateway finding
            self.report(False, label, f"could not sign: {type(e).__name__}: {e}")
            return
        status, answer = self.send(p, headers, body, target)
        self.count(p, status, answer)
        if p.answer:
            ok = status == 200 and parse_json(answer) == p.answer(body)
        else:
            ok = status == 200 and answer == body
        self.report(ok, label, describe(status, answer, headers, body, target))

        self.refusal(p, f"{p.route} one body byte changed", headers, flip(body), target, p.refused,
                     "invalid_signature")
        if p.stale:
            stale_at = now - p.stale
            stale_body = p.body(stale_at)
            self.refusal(p, f"{p.route} signed {p.stale} s ago", signed(stale_at, stale_body), stale_body,
                         target, 403, "expired")

    def refusal(self, p, what, headers, body, target, status, outcome) -> None:
        got, answer = self.send(p, headers, body, target)
        self.report(got == status and self.count(p, got, answer) == outcome, f"{what} -> {status} {outcome}",
                    describe(got, answer, headers, body, target))

    def count(self, p: Provider, status, answer) -> Optional[str]:
        """The outcome the gateway's answer shows, tallied for the /metrics check."""
        if status == 200:
            outcome = "challenge" if p.answer else "forwarded"
        else:
            error = parse_json(answer)
            outcome = error.get("error") if isinstance(error, dict) else None
        key = (p.route, outcome or f"status {status}")
        self.answered[key] = self.answered.get(key, 0) + 1
        return outcome

    def metrics(self) -> None:
        _, text = request(self.state["admin"], "GET", "/metrics", {})
        actual = {}
        for line in text.decode().splitlines():
            m = re.match(r'hookgate_requests_total\{(.*)\} (\d+)$', line)
            if m:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
                if int(m.group(2)):
                    actual[(labels["route"], labels["outcome"])] = int(m.group(2))
        for outcome in ("forwarded", "challenge", "invalid_signature", "expired"):
            want = sum(n for (_, o), n in self.answered.items() if o == outcome)
            got = sum(n for (_, o), n in actual.items() if o == outcome)
            self.report(want == got, f"metrics: hookgate_requests_total{{outcome=\"{outcome}\"}} is {got}, "
                                     f"answers {want}")
        wrong = {k: (self.answered.get(k, 0), actual.get(k, 0))
                 for k in set(self.answered) | set(actual) if self.answered.get(k, 0) != actual.get(k, 0)}
        self.report(not wrong, "metrics: every route's counters match the answers it gave",
                    "; ".join(f"{r}/{o}: answered {w}, counted {g}" for (r, o), (w, g) in sorted(wrong.items())))


def parse_json(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def describe(status, answer, headers, body, target) -> str:
    return (f"response {status} {answer[:300]!r}\n       request POST {target}\n       headers {headers}"
            f"\n       body {body[:300]!r}")


def have_node() -> bool:
    return shutil.which("node") is not None


def main(argv) -> int:
    if len(argv) != 3 or argv[1] not in ("config", "ready", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    command, workdir = argv[1], argv[2]
    if command == "config":
        write_config(workdir)
        return 0
    with open(os.path.join(workdir, "state.json")) as f:
        state = json.load(f)
    if command == "ready":
        try:
            return 0 if request(state["admin"], "GET", "/readyz", {})[0] == 200 else 1
        except OSError:
            return 1
    run = Run(state)
    started = time.monotonic()
    for p in PROVIDERS:
        run.provider(p)
    if run.passed + run.failed == 0:
        print("FAIL no provider library could be used")
        return 1
    run.metrics()
    print(f"\n{len(PROVIDERS)} routes, {time.monotonic() - started:.1f} s")
    print(f"interop: {run.passed} passed, {run.failed} failed, {run.skipped} skipped")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
