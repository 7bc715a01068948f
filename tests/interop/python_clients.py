"""Tessera against the Python clients people use, on their defaults.

Run by tests/interop.rs against a real `tessera serve`, with the clients it
registered named in the environment. Each case prints `ok NAME` or
`FAILED NAME: why`; the last line counts them ("N passed, M failed") and the
exit status is non-zero when any failed.
"""

import os

import grpc
import jwt
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from interop_support import ALLOWED, case, field, finish, first_string_field, oauth_code_of

URL = os.environ["TESSERA_URL"]
TOKEN_URL = URL + "/oauth2/token"
INTROSPECT_URL = URL + "/oauth2/introspect"
REVOKE_URL = URL + "/oauth2/revoke"
SECRET_ID = os.environ["SECRET_CLIENT_ID"]
SECRET = os.environ["SECRET_CLIENT_SECRET"]
JWT_ID = os.environ["JWT_CLIENT_ID"]
JWT_KEY = open(os.environ["JWT_CLIENT_KEY_FILE"]).read()
INTROSPECTOR_ID = os.environ["INTROSPECTOR_ID"]
INTROSPECTOR_SECRET = os.environ["INTROSPECTOR_SECRET"]
AUDIENCE = os.environ["AUDIENCE"]


def session(auth_method, client_id=SECRET_ID, secret=SECRET, **kwargs):
    return OAuth2Session(client_id, secret, token_endpoint_auth_method=auth_method, **kwargs)


def fetch(client, **kwargs):
    return client.fetch_token(TOKEN_URL, grant_type="client_credentials", **kwargs)


def oauth_error(call):
    try:
        call()
    except OAuthError as error:
        assert error.description is None or set(error.description) <= ALLOWED, error.description
        return error.error
    raise AssertionError("the call succeeded")


@case
def authlib_client_secret_basic_gets_a_token():
    token = fetch(session("client_secret_basic"))
    assert token["token_type"] == "Bearer", token
    assert token["expires_in"] > 0, token


@case
def authlib_client_secret_post_gets_a_token():
    token = fetch(session("client_secret_post"))
    assert token["access_token"].count(".") == 2, token


@case
def authlib_private_key_jwt_on_its_defaults_gets_a_token():
    # authlib signs RS256 assertions that live 3600 s unless told otherwise.
    auth = PrivateKeyJWT(TOKEN_URL)
    client = OAuth2Session(JWT_ID, JWT_KEY, token_endpoint_auth_method=auth)
    token = fetch(client)
    assert token["token_type"] == "Bearer", token


@case
def authlib_private_key_jwt_twice_needs_no_configuration():
    # Each request signs a fresh assertion (new jti): both are accepted.
    auth = PrivateKeyJWT(TOKEN_URL)
    client = OAuth2Session(JWT_ID, JWT_KEY, token_endpoint_auth_method=auth)
    fetch(client)
    fetch(client)


@case
def authlib_surfaces_invalid_client_for_a_wrong_secret_basic():
    code = oauth_error(lambda: fetch(session("client_secret_basic", secret="wrong")))
    assert code == "invalid_client", code


@case
def authlib_surfaces_invalid_client_for_a_wrong_secret_post():
    code = oauth_error(lambda: fetch(session("client_secret_post", secret="wrong")))
    assert code == "invalid_client", code


@case
def authlib_surfaces_invalid_scope():
    code = oauth_error(lambda: fetch(session("client_secret_basic", scope="admin"), scope="admin"))
    assert code == "invalid_scope", code


@case
def authlib_surfaces_invalid_scope_for_a_hostile_scope():
    code = oauth_error(lambda: fetch(session("client_secret_basic"), scope='a"b\\c é'))
    assert code == "invalid_scope", code


@case
def pyjwt_jwk_client_verifies_a_token_on_its_defaults():
    token = fetch(session("client_secret_basic"))["access_token"]
    keys = jwt.PyJWKClient(URL + "/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=AUDIENCE, issuer=URL)
    assert claims["client_id"] == SECRET_ID, claims
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


@case
def authlib_introspects_and_revokes():
    token = fetch(session("client_secret_basic"))["access_token"]
    introspector = session("client_secret_basic", INTROSPECTOR_ID, INTROSPECTOR_SECRET)
    answer = introspector.introspect_token(INTROSPECT_URL, token=token)
    assert answer.status_code == 200 and answer.json()["active"] is True, answer.text
    revoked = session("client_secret_basic").revoke_token(REVOKE_URL, token=token)
    assert revoked.status_code == 200, revoked.text
    answer = introspector.introspect_token(INTROSPECT_URL, token=token)
    assert answer.json() == {"active": False}, answer.text


@case
def a_plain_requests_401_carries_a_readable_challenge():
    answer = requests.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(SECRET_ID, "wrong"), timeout=10
    )
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Basic realm="{URL}"'), challenge
    assert 'error="invalid_client"' in challenge, challenge


# --- grpcio, on its defaults, with the messages encoded by hand (no codegen) ---


def issue_over_grpc(secret):
    target = URL.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        issue = channel.unary_unary(
            "/tessera.v1.TokenService/IssueToken",
            request_serializer=lambda m: m,
            response_deserializer=lambda m: m,
        )
        request = field(1, "client_credentials") + field(2, SECRET_ID) + field(3, secret)
        return issue(request, timeout=10)


@case
def grpcio_issues_a_token():
    answer = issue_over_grpc(SECRET)
    token = first_string_field(answer, 1)
    assert token and token.count(".") == 2, answer


@case
def grpcio_reads_unauthenticated_and_the_oauth_code_for_a_wrong_secret():
    try:
        issue_over_grpc("wrong")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        assert set(error.details()) <= ALLOWED, error.details()
        assert oauth_code_of(error) == "invalid_client", error
        return
    raise AssertionError("a wrong secret was accepted")


finish()
