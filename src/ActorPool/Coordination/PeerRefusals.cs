using Akka.Event;

namespace ActorPool.Coordination;

/// <summary>
/// What the coordinator refused from other processes, logged once per peer and interval with the count since: a
/// peer that sends 20,000 bad messages costs a few lines, not 20,000 warnings.
/// </summary>
internal sealed class PeerRefusals(ILoggingAdapter log, TimeSpan interval)
{
    private readonly Dictionary<string, (long LastLogged, int Suppressed)> _peers = new(StringComparer.Ordinal);

    /// <summary>Records a refusal of <paramref name="what"/> from <paramref name="peer"/>; logs it unless that peer was logged within the interval.</summary>
    public void Refused(string peer, string what, string why)
    {
        var now = Environment.TickCount64;
        if (_peers.TryGetValue(peer, out var seen) && now - seen.LastLogged < interval.TotalMilliseconds)
        {
            _peers[peer] = (seen.LastLogged, seen.Suppressed + 1);
            return;
        }
        if (_peers.Count > 1024)
            _peers.Clear(); // many peers: forget them rather than grow
        var more = seen.Suppressed > 0 ? $" ({seen.Suppressed} more refused from it since the last report)" : "";
        log.Warning("Refused {0} from {1}: {2}{3}.", what, peer, why, more);
        _peers[peer] = (now, 0);
    }
}
