using System.Security.Cryptography;
using System.Text;

namespace ActorPool.Protocol;

/// <summary>
/// Challenge-response over a shared secret, in both directions (Python's authkey handshake, made mutual): each side
/// sends a fresh nonce and answers the other's with an HMAC-SHA256 over the secret, a label for its role, the worker
/// id and both nonces. The secret never travels; a proof answers one challenge only and cannot be reflected (the
/// role label differs).
/// </summary>
internal static class Proof
{
    public static string NewNonce() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>What <paramref name="role"/> ("coordinator", "worker", "client") sends to prove it holds <paramref name="secret"/>.</summary>
    public static string Of(string secret, string role, string id, string theirNonce, string ownNonce) =>
        Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"actorpool {role}|{id}|{theirNonce}|{ownNonce}")));

    /// <summary>Whether <paramref name="given"/> is <paramref name="expected"/>, in constant time.</summary>
    public static bool Matches(string expected, string? given) =>
        given is not null && given.Length == expected.Length
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(given));
}
