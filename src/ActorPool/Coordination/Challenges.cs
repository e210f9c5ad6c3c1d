namespace ActorPool.Coordination;

/// <summary>
/// The challenges a coordinator has sent and not yet seen answered: per peer key, its last few nonces with the secret
/// the answer must prove. Bounded (a peer that keeps asking for challenges cannot grow it), and an answer is taken
/// once.
/// </summary>
internal sealed class Challenges
{
    private const int PerKey = 4, MaxKeys = 4096;
    private readonly Dictionary<string, List<(string Nonce, string Secret)>> _open = new(StringComparer.Ordinal);
    private readonly Queue<string> _order = new();

    public void Add(string key, string nonce, string secret)
    {
        if (!_open.TryGetValue(key, out var list))
        {
            while (_open.Count >= MaxKeys && _order.TryDequeue(out var oldest))
                _open.Remove(oldest);
            _open[key] = list = new List<(string, string)>(PerKey);
            _order.Enqueue(key);
        }
        if (list.Count == PerKey)
            list.RemoveAt(0);
        list.Add((nonce, secret));
    }

    /// <summary>The secret the answer to <paramref name="nonce"/> must prove, once; null when that challenge is not open.</summary>
    public string? Take(string key, string nonce)
    {
        if (!_open.TryGetValue(key, out var list))
            return null;
        var at = list.FindIndex(c => c.Nonce == nonce);
        if (at < 0)
            return null;
        var secret = list[at].Secret;
        list.RemoveAt(at);
        if (list.Count == 0)
            _open.Remove(key);
        return secret;
    }
}
