// Catch-all documentation route: renders the page named by the slug segments.
export default function DocsPage({ params }: { params: { slug: string[] } }) {
  const path = params.slug.join("/");
  return <article data-path={path}>Documentation for {path}</article>;
}
