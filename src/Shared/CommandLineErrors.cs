using System.CommandLine;

namespace ActorPool.Shared;

/// <summary>What every ActorPool program does with a command line it cannot parse (compiled into each program).</summary>
internal static class CommandLineErrors
{
    /// <summary>The exit code of a bad command line.</summary>
    public const int ExitUsage = 2;

    /// <summary>Prints the parse errors and how to get help; true when there were any (exit with <see cref="ExitUsage"/>).</summary>
    public static bool Report(ParseResult result)
    {
        if (result.Errors.Count == 0)
            return false;
        foreach (var e in result.Errors)
            Console.Error.WriteLine(e.Message);
        Console.Error.WriteLine("Run with --help for usage.");
        return true;
    }
}
