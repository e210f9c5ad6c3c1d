using ActorPool.Execution;

namespace ActorPool.Worker;

/// <summary>
/// The child side of an <see cref="ActorProcess"/>: runs its one target and returns the exit code, 0 when the target
/// returned and 1 when it raised, after printing the error as Python does (<c>Process Name:</c>, then the exception
/// and its stack trace) to standard error, which the parent copies to its console.
/// </summary>
internal static class ProcessTargetRunner
{
    public static int Run(WorkerHandshake handshake)
    {
        // Queues and locks this child uses speak TLS with the identity of the program that started it.
        Hosting.ProcessTrust.Adopt(handshake.Tls);
        if (handshake.Daemon)
            WatchParent();
        int code;
        try
        {
            var target = (PoolInitializer)Payload.Deserialize(handshake.Target!)!;
            target.Run();
            code = 0;
        }
        catch (Exception e)
        {
            Report(handshake.WorkerId, e);
            code = 1;
        }
        Flush(Console.Out);
        Flush(Console.Error);
        return code;
    }

    /// <summary>What Python prints when a process's target raises: <c>Process Name:</c>, then the error.</summary>
    public static void Report(string name, Exception e)
    {
        Flush(Console.Out);
        try
        {
            Console.Error.WriteLine($"Process {name}:{Environment.NewLine}{e}");
        }
        catch (Exception)
        {
            // The target closed or broke standard error: the report is lost, the exit code still says it raised.
        }
    }

    /// <summary>
    /// Flushes a standard stream the target may have replaced with a closed or broken writer: that is not the
    /// process's failure (Python exits 0 with sys.stdout closed or None), so nothing it throws escapes.
    /// </summary>
    private static void Flush(TextWriter writer)
    {
        try
        {
            writer.Flush();
        }
        catch (Exception)
        {
            // A closed or broken writer of the target's: nothing left to flush to.
        }
    }

    /// <summary>A daemon ends with its parent: when its standard input closes (the parent exited, even by kill -9).</summary>
    private static void WatchParent()
    {
        new Thread(() =>
        {
            try
            {
                while (StandardInput.Reader.ReadLine() is not null)
                {
                }
            }
            catch (IOException)
            {
            }
            Flush(Console.Out);
            Queues.PendingPuts.Abandon("its parent process ended");
            Environment.Exit(128 + 15); // as if terminated, which is what Python does to daemons at exit
        })
        { IsBackground = true, Name = "actorpool-daemon-parent-watch" }.Start();
    }
}
