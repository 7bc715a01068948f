"""Tessera's client certificates (RFC 8705) with the Python clients people use.

Run by tests/interop.rs against a real `tessera serve` on TLS that asks for
client certificates (optional); the certificate client and the files are
named in the environment. Each case prints `ok NAME` or `FAILED NAME: why`,
and the last line counts them.
"""

import base64
import hashlib
import json
import os

import grpc
import requests
from authlib.integrations.requests_client import OAuth2Session
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from interop_support import case, field, finish, first_string_field, oauth_code_of

URL = os.environ["TESSERA_URL"]
TOKEN_URL = URL + "/oauth2/token"
CA_FILE = os.environ["CA_FILE"]
CLIENT_ID = os.environ["CERT_CLIENT_ID"]
CERT_FILE = os.environ["CLIENT_CERT_FILE"]
KEY_FILE = os.environ["CLIENT_KEY_FILE"]

with open(CERT_FILE, "rb") as pem:
    DER = x509.load_pem_x509_certificate(pem.read()).public_bytes(Encoding.DER)
# RFC 8705 section 3.1: base64url SHA-256 of the DER, unpadded.
THUMBPRINT = base64.urlsafe_b64encode(hashlib.sha256(DER).digest()).rstrip(b"=").decode()


def cnf_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["cnf"]


@case
def requests_with_a_client_certificate_gets_a_bound_token():
    answer = requests.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID},
        cert=(CERT_FILE, KEY_FILE),
        verify=CA_FILE,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert cnf_of(answer.json()["access_token"]) == {"x5t#S256": THUMBPRINT}


@case
def requests_without_the_certificate_is_invalid_client():
    answer = requests.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID},
        verify=CA_FILE,
        timeout=10,
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client", answer.text


@case
def authlib_with_auth_method_none_and_the_sessions_certificate_gets_a_bound_token():
    # authlib has no tls_client_auth method; "none" sends client_id alone,
    # which is what RFC 8705 section 2 asks, and requests carries the
    # certificate (authlib passes its own verify=True, so the CA goes here).
    client = OAuth2Session(CLIENT_ID, token_endpoint_auth_method="none")
    token = client.fetch_token(
        TOKEN_URL, grant_type="client_credentials", cert=(CERT_FILE, KEY_FILE), verify=CA_FILE
    )
    assert cnf_of(token["access_token"]) == {"x5t#S256": THUMBPRINT}


def issue_over_grpc(with_certificate):
    with open(CA_FILE, "rb") as ca:
        root = ca.read()
    if with_certificate:
        with open(KEY_FILE, "rb") as key, open(CERT_FILE, "rb") as cert:
            credentials = grpc.ssl_channel_credentials(root, key.read(), cert.read())
    else:
        credentials = grpc.ssl_channel_credentials(root)
    target = URL.removeprefix("https://")
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, credentials, options=options) as channel:
        issue = channel.unary_unary(
            "/tessera.v1.TokenService/IssueToken",
            request_serializer=lambda m: m,
            response_deserializer=lambda m: m,
        )
        # client_id (2) and no credential: the certificate authenticates.
        return issue(field(1, "client_credentials") + field(2, CLIENT_ID), timeout=10)


@case
def grpcio_with_a_client_certificate_gets_a_bound_token():
    token = first_string_field(issue_over_grpc(True), 1)
    assert cnf_of(token) == {"x5t#S256": THUMBPRINT}


@case
def grpcio_without_the_certificate_reads_invalid_client():
    try:
        issue_over_grpc(False)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        assert oauth_code_of(error) == "invalid_client", error
        return
    raise AssertionError("a token was issued without the certificate")


finish()
