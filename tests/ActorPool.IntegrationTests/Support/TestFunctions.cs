namespace ActorPool.IntegrationTests.Support;

/// <summary>Functions the tests send to worker processes (static methods, as a user's own code would be).</summary>
public static class TestFunctions
{
    public static int Square(int x) => x * x;

    public static int SlowPid(int millis)
    {
        Thread.Sleep(millis);
        return Environment.ProcessId;
    }

    public static int Divide(int x) => 100 / x;

    public static (int Pid, int Thread) SlowPidAndThread(int millis)
    {
        Thread.Sleep(millis);
        return (Environment.ProcessId, Environment.CurrentManagedThreadId);
    }

    public static byte[] Reverse(byte[] bytes) => bytes.Reverse().ToArray();

    /// <summary>Set by the pool's initializer in each worker.</summary>
    public static string? Greeting;

    public static void Init(string greeting, int times) => Greeting = string.Concat(Enumerable.Repeat(greeting, times));

    public static void FailingInit() => throw new InvalidOperationException("no database here");
}
