namespace ActorPool.Queues;

/// <summary>A queue client of this process, as the exit flush sees it.</summary>
internal interface IPendingPuts
{
    /// <summary>Items put in this process that have not reached the queue yet (buffered, on their way, waiting for room).</summary>
    int Unsent { get; }

    string QueuePath { get; }

    /// <summary>Completes when every item put so far has reached the queue (or fails: the queue is gone).</summary>
    Task FlushAsync(CancellationToken ct, bool waiting);
}

/// <summary>
/// Every <c>Put</c> that returned is delivered before this process ends normally, as Python joins a queue's feeder
/// thread at exit: <see cref="FlushAll"/> runs when the process exits (its <c>Main</c> returns, <c>Environment.Exit</c>,
/// SIGTERM, an <see cref="ActorProcess"/> target returning) and before a pool worker leaves (retired, drained, its pool
/// closing). Bounded in time; what could not be sent is said on standard error, never dropped silently.
/// </summary>
internal static class PendingPuts
{
    /// <summary>How long an ending process waits for its puts to reach their queues.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static readonly List<IPendingPuts> Clients = new();
    private static int _hooked;

    public static void Track(IPendingPuts client)
    {
        lock (Clients)
            Clients.Add(client);
        if (Interlocked.Exchange(ref _hooked, 1) == 0)
            AppDomain.CurrentDomain.ProcessExit += (_, _) => FlushAll(Bound);
    }

    private static string? _abandoned;

    /// <summary>Nothing can be delivered any more (the process that holds the queues is gone): the exit flush only says what is lost.</summary>
    public static void Abandon(string why) => Interlocked.CompareExchange(ref _abandoned, why, null);

    /// <summary>Flushes every queue client of this process, waiting at most <paramref name="bound"/> in all.</summary>
    public static void FlushAll(TimeSpan bound)
    {
        List<IPendingPuts> clients;
        lock (Clients)
            clients = Clients.Where(c => c.Unsent > 0).ToList();
        if (clients.Count == 0)
            return;
        if (Volatile.Read(ref _abandoned) is { } why)
        {
            foreach (var client in clients)
                Report(client, client.Unsent, why);
            return;
        }
        using var timeout = new CancellationTokenSource(bound);
        foreach (var client in clients)
        {
            string? failure = null;
            try
            {
                client.FlushAsync(timeout.Token, waiting: true).Wait(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                failure = $"they did not reach it within {bound.TotalSeconds:0} s";
            }
            catch (AggregateException e) when (e.InnerException is ActorPoolException or QueueCompletedException)
            {
                failure = e.InnerException.Message;
            }
            catch (ActorPoolException e)
            {
                failure = e.Message;
            }
            if (failure is not null && client.Unsent is var lost and > 0)
                Report(client, lost, failure);
        }
    }

    private static void Report(IPendingPuts client, int lost, string why) =>
        Console.Error.WriteLine($"ActorPool: {lost} item(s) put to the queue at {client.QueuePath} by this process (pid {Environment.ProcessId}) were not delivered: {why}.");
}
