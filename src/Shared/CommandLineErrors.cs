using System.CommandLine;

namespace ActorPool.Shared;

/// <summary>What every ActorPool program does with a command line it cannot parse (compiled into each program).</summary>
internal static class CommandLineErrors
{
    /// <summary>The exit code of a bad command line.</summary>
    public const int ExitUsage = 2;

    /// <summary>
    /// Prints the parse errors (and, for an unknown option, the one it was probably meant to be) and how to get help;
    /// true when there were any (exit with <see cref="ExitUsage"/>).
    /// </summary>
    public static bool Report(ParseResult result)
    {
        if (result.Errors.Count == 0)
            return false;
        foreach (var e in result.Errors)
            Console.Error.WriteLine(e.Message);
        var names = result.CommandResult.Command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).ToList();
        foreach (var token in result.UnmatchedTokens.Where(t => t.StartsWith("--", StringComparison.Ordinal)))
        {
            var guess = names.Where(n => Distance(n, token) <= 2 || n.StartsWith(token, StringComparison.Ordinal))
                .OrderBy(n => Distance(n, token)).FirstOrDefault();
            if (guess is not null)
                Console.Error.WriteLine($"Did you mean '{guess}' for '{token}'?");
        }
        Console.Error.WriteLine("Run with --help for usage.");
        return true;
    }

    /// <summary>
    /// Adds a check of <paramref name="option"/>'s value that reports <paramref name="error"/> when <paramref name="valid"/>
    /// says no. A value that is not even of the option's type (<c>--unit abc</c>) is left to the parser, which says so.
    /// </summary>
    public static void Check<T>(Option<T> option, Func<T, bool> valid, string error) =>
        option.Validators.Add(r =>
        {
            T value;
            try
            {
                value = r.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                return; // not a T: the parser reports it ("Cannot parse argument 'abc' for option '--unit'...")
            }
            if (!valid(value))
                r.AddError(error);
        });

    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var previous = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var current = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), previous + (a[i - 1] == b[j - 1] ? 0 : 1));
                previous = current;
            }
        }
        return row[b.Length];
    }
}
