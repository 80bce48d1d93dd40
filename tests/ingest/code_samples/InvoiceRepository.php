<?php

declare(strict_types=1);

namespace App\Billing;

use PDO;
use InvalidArgumentException;

/**
 * Something that can be turned into an invoice line.
 */
interface Billable
{
    public function amountInCents(): int;
}

trait Timestamps
{
    private ?\DateTimeImmutable $createdAt = null;

    public function touch(): void
    {
        $this->createdAt = new \DateTimeImmutable();
    }
}

enum Currency: string
{
    case Euro = 'EUR';
    case Dollar = 'USD';

    public function symbol(): string
    {
        return match ($this) {
            Currency::Euro => '€',
            Currency::Dollar => '$',
        };
    }
}

/**
 * Loads and stores invoices in a relational database.
 */
#[Repository(table: 'invoices')]
final class InvoiceRepository
{
    use Timestamps;

    public const PAGE_SIZE = 50;

    public function __construct(private PDO $db)
    {
    }

    /**
     * Finds one invoice by its number.
     */
    public function find(string $number): ?array
    {
        $stmt = $this->db->prepare('SELECT * FROM invoices WHERE number = ?');
        $stmt->execute([$number]);
        $row = $stmt->fetch(PDO::FETCH_ASSOC);
        return $row === false ? null : $row;
    }

    public static function fromDsn(string $dsn): self
    {
        if ($dsn === '') {
            throw new InvalidArgumentException('empty DSN');
        }
        return new self(new PDO($dsn));
    }
}

function format_cents(int $cents, Currency $currency = Currency::Euro): string
{
    return sprintf('%s%.2f', $currency->symbol(), $cents / 100);
}
