// Tessera against Node's openid-client (v6), on its defaults.
//
// Run by tests/interop.rs against a real `tessera serve`. Each case prints
// `ok NAME` or `FAILED NAME: why`; the last line counts them ("N passed, M
// failed") and the exit status is non-zero when any failed.
import * as client from 'openid-client'

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const issuer = new URL(env('TESSERA_URL'))
const secretId = env('SECRET_CLIENT_ID')
const secret = env('SECRET_CLIENT_SECRET')
const introspectorId = env('INTROSPECTOR_ID')
const introspectorSecret = env('INTROSPECTOR_SECRET')

// Loopback tests run over http; everything else is the library's default.
const options = { algorithm: 'oauth2', execute: [client.allowInsecureRequests] }
const configure = (id, auth) => client.discovery(issuer, id, undefined, auth, options)

const results = []
async function test (name, body) {
  try {
    await body()
    results.push([name, null])
    console.log(`ok ${name}`)
  } catch (error) {
    results.push([name, error])
    console.log(`FAILED ${name}: ${error?.stack ?? error}`)
  }
}
function assert (condition, message) {
  if (!condition) throw new Error(message)
}
async function rejection (promise) {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('the call succeeded')
}
// RFC 6749 section 5.2: %x20-21 / %x23-5B / %x5D-7E.
const inCharset = (text) => [...text].every((c) => /[\x20\x21\x23-\x5B\x5D-\x7E]/.test(c))

await test('discovery_reads_the_rfc8414_metadata', async () => {
  const config = await configure(secretId, client.ClientSecretPost(secret))
  const metadata = config.serverMetadata()
  assert(metadata.issuer === issuer.href.replace(/\/$/, ''), `issuer ${metadata.issuer}`)
  assert(metadata.token_endpoint.endsWith('/oauth2/token'), metadata.token_endpoint)
})

await test('client_credentials_grant_with_the_default_client_secret_post', async () => {
  const config = await client.discovery(issuer, secretId, secret, undefined, options)
  const tokens = await client.clientCredentialsGrant(config, { scope: 'read' })
  assert(tokens.token_type.toLowerCase() === 'bearer', JSON.stringify(tokens))
  assert(tokens.access_token.split('.').length === 3, 'a JWT')
})

await test('client_credentials_grant_with_client_secret_basic', async () => {
  const config = await configure(secretId, client.ClientSecretBasic(secret))
  const tokens = await client.clientCredentialsGrant(config)
  assert(tokens.expires_in > 0, JSON.stringify(tokens))
})

await test('a_wrong_secret_over_basic_reads_invalid_client_from_the_challenge', async () => {
  const config = await configure(secretId, client.ClientSecretBasic('wrong'))
  const error = await rejection(client.clientCredentialsGrant(config))
  // With WWW-Authenticate on a 401, openid-client reads the OAuth error from
  // the challenge's parameters, not from the body.
  assert(error instanceof client.WWWAuthenticateChallengeError, `${error?.name}: ${error?.message}`)
  const [challenge] = error.cause
  assert(challenge.scheme === 'basic', JSON.stringify(error.cause))
  assert(challenge.parameters.error === 'invalid_client', JSON.stringify(error.cause))
  assert(inCharset(challenge.parameters.error_description ?? ''), JSON.stringify(error.cause))
})

await test('a_wrong_secret_over_post_reads_invalid_client_from_the_body', async () => {
  const config = await configure(secretId, client.ClientSecretPost('wrong'))
  const error = await rejection(client.clientCredentialsGrant(config))
  assert(error instanceof client.ResponseBodyError, `${error?.name}: ${error?.message}`)
  assert(error.error === 'invalid_client', error.error)
  assert(inCharset(error.error_description), error.error_description)
})

await test('a_scope_beyond_the_client_reads_invalid_scope', async () => {
  const config = await configure(secretId, client.ClientSecretBasic(secret))
  const error = await rejection(client.clientCredentialsGrant(config, { scope: 'admin "x"' }))
  assert(error.error === 'invalid_scope', `${error?.name}: ${error?.error}`)
  assert(inCharset(error.error_description), error.error_description)
})

await test('token_introspection_and_token_revocation', async () => {
  const owner = await configure(secretId, client.ClientSecretBasic(secret))
  const { access_token: token } = await client.clientCredentialsGrant(owner)
  const introspector = await configure(introspectorId, client.ClientSecretBasic(introspectorSecret))
  const active = await client.tokenIntrospection(introspector, token)
  assert(active.active === true && active.client_id === secretId, JSON.stringify(active))
  await client.tokenRevocation(owner, token)
  const revoked = await client.tokenIntrospection(introspector, token)
  assert(revoked.active === false, JSON.stringify(revoked))
})

const failed = results.filter(([, error]) => error)
console.log(`${results.length - failed.length} passed, ${failed.length} failed`)
process.exit(failed.length ? 1 : 0)
